"""One-line bugs ("mutants"), one per guarantee in the README, and the tests that must catch each.

`make mutants` (tests/mutation/run.py) applies each mutant to a copy of the tree and runs its
tests there: every one of them must fail. To add a mutant, append a `Mutant` to MUTANTS: the
`original` text must occur exactly once in `file` (tests/mutation/test_mutants.py checks this in
the normal suite, so a mutant that went stale when the code changed is noticed at once).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    name: str  # short, unique: what breaks
    file: str  # from the repository root
    original: str  # exact text, found exactly once in `file`
    replacement: str
    tests: tuple[str, ...]  # pytest node ids (from the repository root) that must fail


INTERRUPTS = "tests/reliability/test_interrupts.py"
RUNTIME_INPUT = "tests/reliability/test_runtime_input.py"
USER_FILES = "tests/reliability/test_user_files.py"
RESUME = "tests/reliability/test_resume_identity.py"
PARSING = "tests/reliability/test_input_parsing.py"
MANIFEST = "tests/reliability/test_manifest_trust.py"
DIGEST = "tests/reliability/test_bundle_digest.py"
GRAPH = "tests/reliability/test_graph_trust.py"
CHECKPOINTS = "tests/reliability/test_untrusted_checkpoints.py"
EXCLUSIVE = "tests/reliability/test_exclusive_outputs.py"
DEPLOY = "tests/test_deploy.py"
HF_CLASSIFIER = "tests/test_hf_classifier.py"
HF_CONFIG = (f"{HF_CLASSIFIER}::test_a_config_spamkit_would_compute_otherwise_is_refused_"
             "naming_the_field")
HF_TOKENIZER = (f"{HF_CLASSIFIER}::test_a_tokenizer_that_is_not_gpt2s_is_refused_naming_"
                "the_file_and_field")
HF_FOLDER = (f"{HF_CLASSIFIER}::test_a_folder_spamkit_cannot_read_exactly_is_refused_naming_"
             "the_field")

MUTANTS = [
    Mutant(
        "hashing skipped", "runtime/bundle.py",
        "if sha256_file(Path(bundle) / name) != manifest.files[name]:",
        "if False:",
        ("tests/reliability/test_bundle_damage.py::test_a_damaged_file_is_named_when_loaded",),
    ),
    Mutant(
        "padding leaks into the mask", "runtime/batching.py",
        "mask[i, : len(x)] = 1",
        "mask[i, :] = 1",
        ("tests/test_export.py::test_a_message_gets_the_same_logits_alone_and_batched_with_"
         "longer_ones",),
    ),
    Mutant(
        "truncation keeps the start", "runtime/tokenizer.py",
        "return [x[-self.max_length :] if x else [self.eot_id] for x in ids]",
        "return [x[: self.max_length] if x else [self.eot_id] for x in ids]",
        ("tests/test_tokenizer.py::test_long_message_keeps_its_end",),
    ),
    Mutant(
        "threshold > for >=", "runtime/classifier.py",
        "np.where(proba[:, positive] >= self.threshold",
        "np.where(proba[:, positive] > self.threshold",
        ("tests/test_runtime.py::test_a_threshold_is_reached_by_a_probability_equal_to_it",),
    ),
    Mutant(
        "data cache written in place", "toolkit/data.py",
        "write_bytes_atomic(target, data)",
        "target.parent.mkdir(parents=True, exist_ok=True); target.write_bytes(data)",
        (f"{INTERRUPTS}::test_a_kill_while_the_data_is_cached_leaves_nothing_half_written",),
    ),
    Mutant(
        "manifest written in place", "export/manifest.py",
        "write_bytes_atomic(Path(bundle) / MANIFEST_FILE, text)",
        "(Path(bundle) / MANIFEST_FILE).write_bytes(text)",
        (f"{INTERRUPTS}::test_a_kill_while_calibrate_writes_the_manifest_keeps_a_loadable_bundle",),
    ),
    Mutant(
        "torn row kept on resume", "toolkit/jobs/score.py",
        'records(Source(partial, kind, "label", "id"), whole_lines_only=True)',
        'records(Source(partial, kind, "label", "id"), whole_lines_only=False)',
        (f"{INTERRUPTS}::test_score_stopped_twice_resumes_to_the_uninterrupted_file",),
    ),
    Mutant(
        "CR of a CRLF kept (classify's stdin and scored files)", "toolkit/records.py",
        'return line[:-2] if line.endswith("\\r\\n")',
        'return line[:-1] if line.endswith("\\r\\n")',
        (f"{RUNTIME_INPUT}::test_spamkit_classify_takes_odd_text_from_arguments_and_stdin",
         "tests/test_score.py::test_one_message_per_line_numbered_from_one"),
    ),
    Mutant(
        "no streaming", "runtime/classifier.py",
        "self.chunk_size = 64 * self.batch_size",
        "self.chunk_size = 10**9",
        (f"{RUNTIME_INPUT}::test_a_hundred_thousand_messages_stream_in_bounded_memory",),
    ),
    Mutant(
        "pickle code runs (weights_only=False)", "toolkit/training/pretrained.py",
        'torch.load(path, map_location="cpu", weights_only=True)',
        'torch.load(path, map_location="cpu", weights_only=False)',
        ("tests/test_pretrained.py::test_a_bin_file_with_code_in_its_pickle_is_refused",
         "tests/reliability/test_no_pickle.py"),
    ),
    Mutant(
        "rows come back reordered", "runtime/classifier.py",
        "out[rows] = self._run(",
        "out[sorted(rows)] = self._run(",
        ("tests/test_runtime.py::test_results_come_back_in_the_callers_order",),
    ),
    Mutant(
        "optimizer state not restored", "toolkit/training/resume.py",
        'optimizer.load_state_dict({"state": slots,',
        'optimizer.load_state_dict({"state": {},',
        (f"{INTERRUPTS}::test_sigint_then_resume_gives_the_uninterrupted_result",),
    ),
    Mutant(
        "gradients not averaged", "toolkit/training/train.py",
        "nets.train_net.require_backward_grad_sync = step_ends",
        "nets.train_net.require_backward_grad_sync = False",
        ("tests/test_distributed.py::test_two_processes_train_as_one_process_with_the_same_"
         "global_batch",),
    ),
    Mutant(
        "one output buffer shared by threads", "runtime/classifier.py",
        "out = np.empty((len(ids), len(self.labels)), dtype=np.float32)",
        'out = self.__dict__.setdefault("_out", np.empty((self.chunk_size, len(self.labels)), '
        'dtype=np.float32))[: len(ids)]',  # right for one caller at a time, shared by threads
        (f"{RUNTIME_INPUT}::test_one_classifier_shared_by_eight_threads_answers_as_a_serial_run",),
    ),
    # The reliability guarantees: nothing of the user's lost, nothing a bundle says trusted.
    Mutant(
        "a user's folder replaced by an output", "toolkit/outputs.py",
        "    if not is_artifact(out, kind):",
        "    if False:",
        (f"{USER_FILES}::test_export_into_a_users_folder_is_refused_and_keeps_every_file",),
    ),
    Mutant(
        "an input overwritten by its output", "toolkit/outputs.py",
        "if given is not None and _contains(Path(out), Path(given)):",
        "if False:",
        (f"{USER_FILES}::test_score_over_its_input_is_refused_even_with_force",),
    ),
    Mutant(
        "a spamkit output replaced without --force", "toolkit/outputs.py",
        "    if not force:\n",
        "    if False:\n",
        (f"{USER_FILES}::test_export_over_a_bundle_needs_force_then_replaces_it",),
    ),
    Mutant(
        "resume continues another run", "toolkit/jobs/score.py",
        "    if differs:",
        "    if False:",
        (f"{RESUME}::test_another_input_with_as_many_rows_is_refused",),
    ),
    Mutant(
        "CSV read leniently", "toolkit/records.py",
        "csv.reader(lines, strict=True)",
        "csv.reader(lines, strict=False)",
        (f"{PARSING}::test_a_malformed_csv_is_refused_naming_the_line",),
    ),
    Mutant(
        "manifest labels may repeat", "runtime/bundle.py",
        "    if len(set(v)) != len(v):",
        "    if False:",
        (f"{MANIFEST}::test_a_manifest_field_out_of_bounds_is_refused_in_one_line",),
    ),
    Mutant(
        "manifest context length unchecked", "runtime/bundle.py",
        '"context_length": _int_in(1, MAX_CONTEXT),',
        '"context_length": lambda v: None,',
        (f"{MANIFEST}::test_a_manifest_field_out_of_bounds_is_refused_in_one_line",),
    ),
    Mutant(
        "tokenizer ids beyond the vocabulary", "runtime/classifier.py",
        "if manifest.vocab_size is not None and largest >= manifest.vocab_size:",
        "if False:",
        (f"{MANIFEST}::test_a_tampered_and_rechecksummed_tokenizer_is_refused_in_one_line",),
    ),
    Mutant(
        "digest pin ignored", "runtime/bundle.py",
        "if expected is not None and found != expected:",
        "if False:",
        (f"{DIGEST}::test_a_pinned_load_refuses_a_manifest_whose_labels_were_swapped",),
    ),
    Mutant(
        "a NaN logit answered", "runtime/classifier.py",
        "        if not finite.all():",
        "        if False:",
        (f"{GRAPH}::test_a_non_finite_logit_is_refused_naming_the_message",),
    ),
    Mutant(
        "absurd model sizes built", "toolkit/config.py",
        "if self.n_layer > MAX_LAYERS or self.parameters > MAX_PARAMETERS:",
        "if False:",
        # A vocabulary of 1e12 builds nothing on the meta device, so the test fails fast, where a
        # million layers would only hit its time limit.
        (f"{CHECKPOINTS}::test_a_damaged_checkpoint_config_is_refused_before_building"
         "[a vocabulary of 1e12]",),
    ),
    Mutant(
        "the text graph keeps a long message's start", "export/text_graph.py",
        'node("Sub", ["text/count", "text/kept"], ["text/start"])',
        'node("Sub", ["text/kept", "text/kept"], ["text/start"])',
        ("tests/test_text_graph.py::test_every_sms_message_gets_the_runtimes_ids_and_logits",
         "tests/test_text_graph.py::test_edge_cases_read_alike"),
    ),
    Mutant(
        "a loaded tokenizer writes a file without its last rank", "runtime/tokenizer.py",
        "for r in range(first_special)]", "for r in range(first_special - 1)]",
        ("tests/test_tokenizer.py::test_a_loaded_tokenizer_writes_and_pickles_the_file_it_was_"
         "read_from",),
    ),
    Mutant(
        "the runtime reads <|endoftext|> as plain text", "runtime/tokenizer.py",
        "ids = (self.encoding.encode(t[-self.max_chars :], allowed_special={EOT},",
        "ids = (self.encoding.encode(t[-self.max_chars :], allowed_special=set(),",
        ("tests/test_text_graph.py::test_edge_cases_read_alike",
         "tests/test_text_graph.py::test_any_text_gets_the_same_ids_and_logits",
         "tests/test_tokenizer.py::test_endoftext_in_a_message_is_the_end_of_text_token"),
    ),
    # Exclusive outputs (issue 28)
    Mutant(
        "the final swap deletes what it did not check", "toolkit/atomic.py",
        "_put(tmp, target, owned_files)",
        "_put(tmp, target, lambda p: [f.relative_to(p).as_posix() for f in p.rglob('*') "
        "if not f.is_dir()] if p.is_dir() else [])",  # everything found there, as rmtree did
        (f"{EXCLUSIVE}::test_a_file_put_in_an_empty_out_during_export_is_kept",
         f"{EXCLUSIVE}::test_a_file_put_in_a_bundle_being_replaced_is_kept_with_the_bundle",
         f"{EXCLUSIVE}::test_atomic_dir_replaces_only_an_empty_folder_it_finds_still_empty"),
    ),
    Mutant(
        "two runs share one output", "toolkit/outputs.py",
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
        (f"{EXCLUSIVE}::test_a_second_score_to_the_same_out_is_refused_and_the_first_ends_"
         "intact",
         f"{EXCLUSIVE}::test_a_second_export_to_the_same_out_is_refused_while_the_first_runs",
         f"{EXCLUSIVE}::test_a_second_train_cannot_resume_the_run_a_first_is_training"),
    ),
    Mutant(
        "--force trusts a manifest's format field", "toolkit/outputs.py",
        "BUNDLE: _bundle_files,",
        "BUNDLE: lambda p: peek_format_json(p / MANIFEST_FILE, 'spamkit-bundle') and "
        "{f.relative_to(p).as_posix() for f in p.rglob('*')},",
        (f"{USER_FILES}::test_force_never_takes_a_users_folder_for_a_bundle",),
    ),
    Mutant(
        "score's rename replaces what appeared at --out", "toolkit/jobs/score.py",
        "return [] if cfg.force and is_artifact(found, SCORES) else None",
        "return []",
        (f"{EXCLUSIVE}::test_a_file_put_at_out_while_score_runs_is_kept_and_so_are_the_rows",),
    ),
    Mutant(
        "a link at OUT.partial is followed", "toolkit/jobs/score.py",
        "    if partial.is_symlink():",
        "    if False:",
        (f"{EXCLUSIVE}::test_score_refuses_a_link_at_its_partial_name",),
    ),
    Mutant(
        "Ctrl-C during export says nothing", "export/bundle.py",
        "except KeyboardInterrupt:",
        "except ZeroDivisionError:",
        (f"{INTERRUPTS}::test_ctrl_c_during_export_says_what_out_holds",),
    ),
    # Graph files and text graphs (issue 28)
    Mutant(
        "a NUL ends the text graph's message", "runtime/text_graph.py",
        'encoded = [t.encode("utf-8").replace(b"\\0", NUL_BYTES) for t in texts]',
        'encoded = [t.encode("utf-8") for t in texts]',
        ("tests/test_text_graph.py::test_a_nul_does_not_end_the_message",
         "tests/test_text_graph.py::test_edge_cases_read_alike"),
    ),
    Mutant(
        "a graph's external data hashed by its name, not followed", "runtime/session.py",
        "verify_graph(bundle, manifest, manifest.graph_file(precision))",
        "verify_files(bundle, manifest, manifest.graph_files(precision))",
        (f"{DIGEST}::test_a_graph_reading_its_weights_from_an_unlisted_file_is_refused_under_the_"
         "pin",
         f"{GRAPH}::test_a_graph_reading_another_graphs_weights_has_them_hashed"),
    ),
    Mutant(
        "external data in node attributes and subgraphs not followed", "runtime/external_data.py",
        "ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},",
        "ATTRIBUTE: {},",
        (f"{GRAPH}::test_weights_from_an_unlisted_file_are_refused_wherever_the_graph_holds_them",),
    ),
    Mutant(
        "a text graph's external data hashed by name, not followed", "runtime/session.py",
        "verify_graph(bundle, manifest, manifest.text_graphs[precision])",
        "verify_files(bundle, manifest, [manifest.text_graphs[precision], "
        "*manifest.graph_files(precision)])",
        ("tests/test_text_graph.py::test_a_text_graph_reading_another_graphs_weights_has_them_"
         "hashed",),
    ),
    Mutant(
        "export's text-graph ids check skipped", "export/text_graph.py",
        "if not (np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask)):",
        "if False:",
        ("tests/test_text_graph.py::test_export_refuses_a_text_graph_that_differs[ids]",),
    ),
    Mutant(
        "export's text-graph logits check skipped", "export/text_graph.py",
        "if not worst <= TEXT_TOLERANCE:",
        "if False:",
        ("tests/test_text_graph.py::test_export_refuses_a_text_graph_that_differs[logits]",),
    ),
    Mutant(
        "ONNX Runtime logs its errors beside spamkit's", "runtime/session.py",
        "options.log_severity_level = 4",
        "options.log_severity_level = 2",
        (f"{GRAPH}::test_a_graph_failing_is_one_line_without_onnx_runtimes_own_log",),
    ),
    Mutant(
        "the softmax overflows float32", "runtime/classifier.py",
        "    z = z.astype(np.float64)",
        "    z = z",
        (f"{GRAPH}::test_huge_logits_give_probabilities_without_a_warning",),
    ),
    # Hub and push (issue 28)
    Mutant(
        "a Hub manifest may name another commit's file", "runtime/hub.py",
        'check_plain_names(manifest, f"{reference}: its {MANIFEST_FILE}")',
        "None",
        ("tests/test_hub.py::test_a_commit_cannot_load_a_file_from_another_commits_snapshot",),
    ),
    Mutant(
        "an hf:// revision is not checked", "runtime/hub.py",
        'else repo_id_problem(match["repo"]) or revision_problem(match["revision"]))',
        'else repo_id_problem(match["repo"]))',
        ("tests/test_hub.py::test_an_offline_revision_cannot_lead_out_of_the_cache",),
    ),
    Mutant(
        "an hf:// repository id is not checked", "runtime/hub.py",
        'repo_id_problem(match["repo"]) or revision_problem(match["revision"])',
        'revision_problem(match["revision"])',
        ("tests/test_hub.py::test_a_malformed_reference_is_one_line_saying_what_is_wrong",),
    ),
    Mutant(
        "a cached snapshot outside the cache loads", "runtime/hub.py",
        "if folder.resolve().parent != snapshots.resolve():",
        "if False:",
        ("tests/test_hub.py::test_a_changed_refs_file_or_snapshot_link_cannot_lead_out_of_the_"
         "cache",),
    ),
    Mutant(
        "calibrate rewrites a snapshot in the Hugging Face cache", "runtime/hub.py",
        "if hub_blobs(Path(bundle).resolve()) is not None:",
        "if False:",
        ("tests/test_hub.py::test_calibrate_refuses_a_bundle_on_the_hub_or_in_its_cache",),
    ),
    Mutant(
        "a Hub repository without a manifest passes for a bundle", "runtime/hub.py",
        "if not path.is_file():",
        "if False:",
        ("tests/test_hub.py::test_what_is_not_there_on_the_hub_is_named",),
    ),
    Mutant(
        "a revision the Hub lacks is a download failure", "runtime/hub.py",
        "except errors.RevisionNotFoundError:",
        "except errors.EntryNotFoundError:",
        ("tests/test_hub.py::test_what_is_not_there_on_the_hub_is_named",),
    ),
    Mutant(
        "a repository the Hub lacks is a download failure", "runtime/hub.py",
        "except errors.RepositoryNotFoundError:",
        "except errors.GatedRepoError:",
        ("tests/test_hub.py::test_what_is_not_there_on_the_hub_is_named",),
    ),
    Mutant(
        "offline and not cached does not name HF_HUB_OFFLINE", "runtime/hub.py",
        "if constants.HF_HUB_OFFLINE:",
        "if False:",
        ("tests/test_hub.py::test_offline_and_not_in_the_cache_is_one_line_naming_hf_hub_offline_"
         "and_the_cache",),
    ),
    Mutant(
        "a listed file's name read as a glob pattern", "runtime/hub.py",
        "allow_patterns=[glob.escape(name) for name in missing]",
        "allow_patterns=missing",
        ("tests/test_hub.py::test_a_listed_file_named_like_a_glob_pattern_is_fetched_alone",),
    ),
    Mutant(
        "push sends a malformed repository id to the Hub", "toolkit/jobs/push.py",
        "problem = repo_id_problem(self.repo_id)",
        "problem = None",
        ("tests/test_hub.py::test_push_to_a_malformed_repository_id_says_what_is_wrong_with_it",),
    ),
    Mutant(
        "push publishes a damaged bundle", "toolkit/jobs/push.py",
        "verify_files(bundle, manifest, list(manifest.files))",
        "verify_files(bundle, manifest, [])",
        ("tests/test_hub.py::test_push_refuses_a_damaged_bundle",),
    ),
    Mutant(
        "push names a file by a path that is not plain", "toolkit/jobs/push.py",
        "check_plain_names(manifest, str(bundle / MANIFEST_FILE))",
        "None",
        ("tests/test_hub.py::test_push_refuses_a_file_named_by_a_path_that_is_not_plain",),
    ),
    Mutant(
        "a bundle's README.md replaces the model card", "toolkit/jobs/push.py",
        "if CARD_FILE in manifest.files:",
        "if False:",
        ("tests/test_hub.py::test_push_refuses_a_bundle_that_lists_a_readme_of_its_own",),
    ),
    Mutant(
        "a label's backticks end its code span in the model card", "toolkit/jobs/push.py",
        'fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)',
        'fence = "`"',
        ("tests/test_hub.py::test_the_model_card_shows_what_the_manifest_says_and_renders_none_"
         "of_it",),
    ),
    Mutant(
        "a figure's text rendered raw in the model card", "toolkit/jobs/push.py",
        "return _cell(value)",
        "return value",
        ("tests/test_hub.py::test_the_model_card_shows_what_the_manifest_says_and_renders_none_"
         "of_it",),
    ),
    Mutant(
        "push --dry-run writes into a folder that holds files", "toolkit/jobs/push.py",
        "if out.exists() and not (out.is_dir() and not any(out.iterdir())):",
        "if False:",
        ("tests/test_hub.py::test_push_dry_run_refuses_a_folder_that_holds_files",),
    ),
    Mutant(
        "push says log in whatever failed", "toolkit/jobs/push.py",
        'refused = getattr(getattr(e, "response", None), "status_code", None) in (401, 403)',
        "refused = True",
        ("tests/test_hub.py::test_push_says_log_in_only_when_the_hub_refuses_the_token",),
    ),
    Mutant(
        "a failed push is a traceback", "toolkit/jobs/push.py",
        "except Exception as e:  # noqa: BLE001 - HTTP, token and connection errors of several",
        "except ImportError as e:  # noqa: BLE001 - HTTP, token and connection errors of several",
        ("tests/test_hub.py::test_push_says_log_in_only_when_the_hub_refuses_the_token",),
    ),
    # serve (issue 28)
    Mutant(
        "serve reads an endless header whole", "toolkit/serve/protocol.py",
        "if not self.head_done and self.head_bytes > self.limits.max_header_bytes:",
        "if False:",
        ("tests/test_serve_hostile.py::test_endless_headers_are_cut_off_and_memory_stays_flat",),
    ),
    Mutant(
        "serve lets a head over the limit through", "toolkit/serve/protocol.py",
        "if size <= self.limits.max_header_bytes:",
        "if True:",
        ("tests/test_serve_hostile.py::test_a_head_over_the_limit_is_431_json",),
    ),
    Mutant(
        "serve waits for a slow client forever", "toolkit/serve/protocol.py",
        "if self.deadline is None:",
        "if False:",
        ("tests/test_serve_hostile.py::test_a_slow_client_is_dropped_after_the_read_timeout"
         "[a header a line at a time]",),
    ),
    Mutant(
        "serve times a kept-alive connection, not each request", "toolkit/serve/protocol.py",
        "self._disarm()  # the next request's clock starts with its first byte",
        "pass",
        ("tests/test_serve_hostile.py::test_a_kept_alive_connection_is_timed_per_request_not_"
         "per_connection",),
    ),
    Mutant(
        "serve's plain-text 400 for malformed HTTP", "toolkit/serve/protocol.py",
        'self._refuse(400, "the request is not valid HTTP/1.1")',
        "super().send_400_response(msg)",
        ("tests/test_serve_hostile.py::test_malformed_http_is_a_json_400",),
    ),
    Mutant(
        "one failing request fails its micro-batch", "toolkit/serve/batcher.py",
        "self._run_alone(job)",
        '_settle(job.future, error=RuntimeError("the batch failed"))',
        ("tests/test_serve_hostile.py::test_a_failing_message_fails_only_its_own_request",),
    ),
    Mutant(
        "serve labels without the calibrated threshold", "toolkit/serve/app.py",
        "classifier.decide_labels(proba)",
        "[classifier.labels[i] for i in proba.argmax(axis=1)]",
        ("tests/test_serve_hostile.py::test_the_served_label_follows_the_calibrated_threshold",),
    ),
    Mutant(
        "serve's 500 sends the traceback", "toolkit/serve/app.py",
        'f"classification failed: {first_line(exc)}"',
        'f"classification failed: {\'\'.join(__import__(\'traceback\').format_exception(exc))}"',
        ("tests/test_serve_hostile.py::test_a_500_says_one_line_and_logs_one_traceback",),
    ),
    Mutant(
        "serve answers OPTIONS and GET on classify 415", "toolkit/serve/guard.py",
        'or scope["method"] != "POST"):',
        "):",
        ("tests/test_serve.py::test_other_methods_on_classify_are_405_naming_post",),
    ),
    Mutant(
        "serve waits for a body its Content-Length puts over the limit", "toolkit/serve/guard.py",
        "if length is not None and length.isdigit() and int(length) > self.max_body_bytes:",
        "if False:",
        ("tests/test_serve.py::test_a_declared_length_over_the_limit_is_refused_before_the_body_"
         "comes",),
    ),
    Mutant(
        "serve reads a chunked body over the limit whole", "toolkit/serve/guard.py",
        "if size > self.max_body_bytes:",
        "if False:",
        ("tests/test_serve.py::test_a_chunked_body_over_the_limit_is_refused_as_it_arrives",),
    ),
    Mutant(
        "serve takes any content type for JSON", "toolkit/serve/guard.py",
        'return kind == b"application/json" or kind.endswith(b"+json")',
        "return True",
        ("tests/test_serve.py::test_every_refusal_is_one_json_line_and_the_server_goes_on"
         "[form encoding]",),
    ),
    Mutant(
        "serve refuses --max-messages itself", "toolkit/serve/infer.py",
        "if len(texts) > config.max_messages:",
        "if len(texts) >= config.max_messages:",
        ("tests/test_serve.py::test_a_request_at_every_limit_is_answered",),
    ),
    Mutant(
        "serve refuses a message of --max-chars", "toolkit/serve/infer.py",
        "if len(text) > config.max_chars:",
        "if len(text) >= config.max_chars:",
        ("tests/test_serve.py::test_a_request_at_every_limit_is_answered",),
    ),
    Mutant(
        "serve's queue never full", "toolkit/serve/batcher.py",
        "if depth + len(job.texts) > self.config.max_queue:",
        "if False:",
        ("tests/test_serve.py::test_a_full_queue_is_503_with_retry_after_and_the_rest_are_"
         "answered",),
    ),
    Mutant(
        "serve waits past the request timeout", "toolkit/serve/batcher.py",
        "return await asyncio.wait_for(job.future, self.config.request_timeout_s)",
        "return await job.future",
        ("tests/test_serve.py::test_a_request_past_its_timeout_is_504",),
    ),
    Mutant(
        "serve ignores --digest", "toolkit/serve/server.py",
        "digest=digest)",
        "digest=None)",
        ("tests/test_serve.py::test_start_up_failures_are_one_line",),
    ),
    Mutant(
        "serve answers a body that is not JSON 422", "toolkit/serve/app.py",
        'if any(e["type"] == "json_invalid" or',
        "if any(False or",
        ("tests/test_serve.py::test_every_refusal_is_one_json_line_and_the_server_goes_on"
         "[not JSON]",),
    ),
    Mutant(
        "serve ignores unknown keys", "toolkit/serve/app.py",
        'model_config = ConfigDict(extra="forbid")',
        'model_config = ConfigDict(extra="ignore")',
        ("tests/test_serve.py::test_every_refusal_is_one_json_line_and_the_server_goes_on"
         "[a misspelt key]",),
    ),
    # Classifier API (issue 32)
    Mutant(
        "a pickled Classifier loads again without its digest", "runtime/classifier.py",
        "options.update(digest=self.digest, batch_size=self.batch_size,",
        "options.update(digest=None, batch_size=self.batch_size,",
        ("tests/test_classifier_pickle.py::test_a_bundle_changed_after_pickling_is_refused_in_"
         "the_other_process",),
    ),
    Mutant(
        "iter_predict reads all its input before its first label", "runtime/classifier.py",
        "        chunks = self._logit_chunks(texts, batch_size)",
        "        chunks = [self.logits(texts, batch_size)]",
        ("tests/test_api.py::test_iter_predict_answers_an_endless_stream_as_it_goes",),
    ),
    Mutant(
        "a call's batch_size is ignored", "runtime/classifier.py",
        "length_sorted_batches(lengths, batch_size, self.batch_tokens)",
        "length_sorted_batches(lengths, self.batch_size, self.batch_tokens)",
        ("tests/test_api.py::test_a_call_runs_batches_of_its_own_batch_size",),
    ),
    Mutant(
        "a bare org/name is taken to the Hub though such a folder is here", "runtime/hub.py",
        "if not isinstance(bundle, str) or os.path.lexists(bundle):",
        "if not isinstance(bundle, str):",
        ("tests/test_hub.py::test_a_bare_org_name_is_a_hub_id_where_no_such_folder_is",),
    ),
    # Container and Kubernetes example (issue 32)
    Mutant(
        "the Kubernetes readiness probe asks /healthz", "deploy/kubernetes.yaml",
        "path: /readyz", "path: /healthz",
        (f"{DEPLOY}::test_replicas_behind_a_service_are_ready_on_readyz_and_alive_on_healthz",),
    ),
    Mutant(
        "the pod may run as root", "deploy/kubernetes.yaml",
        "runAsNonRoot: true", "runAsNonRoot: false",
        (f"{DEPLOY}::test_the_pod_runs_as_the_images_non_root_user_with_a_read_only_root",),
    ),
    Mutant(
        "the image's user is a name the kubelet cannot check", "Dockerfile",
        "USER 10001:10001", "USER spamkit",
        (f"{DEPLOY}::test_the_pod_runs_as_the_images_non_root_user_with_a_read_only_root",),
    ),
    Mutant(
        "a pod runs fewer threads than its CPUs", "deploy/kubernetes.yaml",
        'args: ["--threads", "2",', 'args: ["--threads", "1",',
        (f"{DEPLOY}::test_each_pod_runs_as_many_onnx_runtime_threads_as_it_has_whole_cpus",),
    ),
    Mutant(
        "SIGKILL cuts the graceful stop short", "deploy/kubernetes.yaml",
        "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 15",
        (f"{DEPLOY}::test_the_grace_period_lets_prestop_and_the_graceful_stop_finish",),
    ),
    Mutant(
        "a misspelt Kubernetes field", "deploy/kubernetes.yaml",
        "automountServiceAccountToken: false", "automountServiceAccountTokens: false",
        (f"{DEPLOY}::test_the_kubernetes_example_is_valid_against_the_kubernetes_schemas"
         "[1.30.0]",),
    ),
    Mutant(
        "a shell is PID 1 and SIGTERM never reaches spamkit", "Dockerfile",
        'ENTRYPOINT ["spamkit", "serve", "/bundle", "--host", "0.0.0.0", "--port", "8000"]',
        "ENTRYPOINT spamkit serve /bundle --host 0.0.0.0 --port 8000",
        (f"{DEPLOY}::test_hadolint_finds_nothing_to_say_about_the_dockerfile",),
    ),
    # Hugging Face classifiers (issue 30)
    Mutant(
        "another activation exported as GPT-2's", "toolkit/training/hf_classifier.py",
        "    if activation not in ACTIVATIONS:", "    if False:",
        (f"{HF_CONFIG}[activation]",),
    ),
    Mutant(
        "attention scaled by layer exported as GPT-2's", "toolkit/training/hf_classifier.py",
        '    "scale_attn_by_inverse_layer_idx": (',
        '    "scale_attn_by_inverse_layer_idx-unchecked": (',
        (f"{HF_CONFIG}[attention scaled by layer]",),
    ),
    Mutant(
        "upcast attention exported as GPT-2's", "toolkit/training/hf_classifier.py",
        '    "reorder_and_upcast_attn": (', '    "reorder_and_upcast_attn-unchecked": (',
        (f"{HF_CONFIG}[attention upcast]",),
    ),
    Mutant(
        "cross-attention exported as GPT-2's", "toolkit/training/hf_classifier.py",
        '    "add_cross_attention": (', '    "add_cross_attention-unchecked": (',
        (f"{HF_CONFIG}[cross-attention]",),
    ),
    Mutant(
        "unscaled attention exported as GPT-2's", "toolkit/training/hf_classifier.py",
        '    "scale_attn_weights": (', '    "scale_attn_weights-unchecked": (',
        (f"{HF_CONFIG}[unscaled attention]",),
    ),
    Mutant(
        "another layer-norm epsilon exported as GPT-2's", "toolkit/training/hf_classifier.py",
        '    "layer_norm_epsilon": (', '    "layer_norm_epsilon-unchecked": (',
        (f"{HF_CONFIG}[another epsilon]",),
    ),
    Mutant(
        "a multi-label head exported as single-label", "toolkit/training/hf_classifier.py",
        '    if config.get("problem_type") not in SINGLE_LABEL:', "    if False:",
        (f"{HF_CONFIG}[multi-label]",),
    ),
    Mutant(
        "a language model refused without saying how to train one",
        "toolkit/training/hf_classifier.py",
        "        if any(a in LANGUAGE_MODELS for a in architectures):", "        if False:",
        (f"{HF_CLASSIFIER}::test_a_language_model_is_refused_saying_how_to_train_a_classifier_"
         "from_it",),
    ),
    Mutant(
        "a folder that is neither taken for a checkpoint", "toolkit/training/hf_classifier.py",
        '    if not isinstance(data, dict) or "format" in data:', "    if True:",
        (f"{HF_CLASSIFIER}::test_a_folder_that_is_neither_says_what_was_expected[no config]",
         f"{HF_CLASSIFIER}::test_a_folder_that_is_neither_says_what_was_expected[other config]"),
    ),
    Mutant(
        "another vocabulary or merges taken for GPT-2's", "toolkit/training/hf_tokenizer.py",
        "    if found == want:", "    if True:",
        (f"{HF_TOKENIZER}[merges in another order]", f"{HF_TOKENIZER}[another vocabulary]"),
    ),
    Mutant(
        "a prefix space taken for GPT-2's pre-tokenizer", "toolkit/training/hf_tokenizer.py",
        'pre.get("add_prefix_space") is False and ', "",
        (f"{HF_TOKENIZER}[a prefix space]",),
    ),
    Mutant(
        "an added plain token taken for GPT-2's", "toolkit/training/hf_tokenizer.py",
        "        if vocab.get(content) != token_id and special is not True:", "        if False:",
        (f"{HF_TOKENIZER}[an added plain word]",),
    ),
    Mutant(
        "a folder without a tokenizer exported", "toolkit/training/hf_tokenizer.py",
        "    if not checked:", "    if False:",
        (f"{HF_TOKENIZER}[no tokenizer]",),
    ),
    Mutant(
        "a config without id2label read", "toolkit/training/hf_classifier.py",
        "    if not isinstance(id2label, dict) or not id2label:", "    if False:",
        (f"{HF_FOLDER}[no id2label]",),
    ),
    Mutant(
        "id2label with a gap read", "toolkit/training/hf_classifier.py",
        "    if sorted(by_id) != list(range(len(id2label))) or not all(",
        "    if False and not all(",
        (f"{HF_FOLDER}[id2label with a gap]",),
    ),
    Mutant(
        "a pad_token_id beyond the vocabulary read", "toolkit/training/hf_classifier.py",
        "    if pad is not None and (not isinstance(pad, int)",
        "    if False and (not isinstance(pad, int)",
        (f"{HF_FOLDER}[a pad_token_id beyond the vocabulary]",),
    ),
    Mutant(
        "weights without a score head read", "toolkit/training/hf_classifier.py",
        "    if missing:\n", "    if False:\n",
        (f"{HF_FOLDER}[no score head]",),
    ),
    Mutant(
        "tokenizer_config.json's prefix space or BOS token taken for GPT-2's",
        "toolkit/training/hf_tokenizer.py",
        "        if data.get(field):", "        if False:",
        (f"{HF_FOLDER}[a prefix space in tokenizer_config.json]", f"{HF_FOLDER}[a BOS token]"),
    ),
    Mutant(
        "a normalizer taken for GPT-2's tokenizer", "toolkit/training/hf_tokenizer.py",
        '    if data.get("normalizer") is not None:', "    if False:",
        (f"{HF_FOLDER}[a normalizer]",),
    ),
    Mutant(
        "a tokenizer model other than BPE taken for GPT-2's", "toolkit/training/hf_tokenizer.py",
        '    if not isinstance(model, dict) or model.get("type") != "BPE":',
        "    if not isinstance(model, dict):",
        (f"{HF_FOLDER}[not BPE]",),
    ),
    Mutant(
        "a transformers model checked against spamkit's own PyTorch model", "export/sources.py",
        "    return Source(hf.checkpoint, transformers_reference(hf))",
        "    return Source(hf.checkpoint, torch_reference(hf.checkpoint.model))",
        (f"{HF_CLASSIFIER}::test_a_model_transformers_reads_otherwise_is_refused_by_the_parity_"
         "check",),
    ),
    # CLI conveniences (issue 32)
    Mutant(
        "train --threads is not applied", "toolkit/training/train.py",
        "torch.set_num_threads(threads)", "pass",
        ("tests/test_train_threads.py::test_train_runs_torch_on_the_threads_asked_for"
         "[--threads]",),
    ),
    Mutant(
        "every --nproc process gets every CPU", "toolkit/cli.py",
        "return max(1, usable_cpus() // nproc)", "return max(1, usable_cpus())",
        ("tests/test_train_threads.py::test_under_nproc_each_process_gets_its_share_of_the_cpus",),
    ),
    Mutant(
        "train --resume compares --threads with the run's settings", "toolkit/training/resume.py",
        "if name not in NOT_SETTINGS and not _same_setting(", "if not _same_setting(",
        ("tests/test_train_threads.py::test_resume_may_run_on_other_threads",),
    ),
    Mutant(
        "a missing extra's ImportError is a traceback", "toolkit/cli_run.py",
        "except ImportError as e:  # an extra this command needs is not installed",
        "except ModuleNotFoundError as e:",
        ("tests/test_extras.py::test_each_missing_extra_is_one_line_naming_it[classify hf://]",),
    ),
    Mutant(
        "matplotlib named as the train extra's", "toolkit/extras.py",
        "\"matplotlib\": (\"plots\", 'pip install \"spamkit[plots]\"'),",
        "\"matplotlib\": (\"plots\", TRAIN_INSTALL),",
        ("tests/test_extras.py::test_each_missing_extra_is_one_line_naming_it[eval --plots]",),
    ),
    Mutant(
        "score --engine ray finds Ray missing only after reading the input",
        "toolkit/jobs/score.py",
        'if self.engine == "ray":  # before the input is read, however large', "if False:",
        ("tests/test_extras.py::test_each_missing_extra_is_one_line_naming_it"
         "[score --engine ray]",),
    ),
    Mutant(
        "push finds huggingface_hub missing only after reading the bundle", "toolkit/jobs/push.py",
        "if dry_run is None:  # before the bundle is read and hashed", "if False:",
        ("tests/test_extras.py::test_each_missing_extra_is_one_line_naming_it[push]",),
    ),
    Mutant(
        "training without matplotlib fails at its end", "toolkit/training/train.py",
        'if importlib.util.find_spec("matplotlib") is not None:', "if True:",
        ("tests/test_extras.py::test_training_without_the_plots_extra_says_so_and_skips_the_"
         "curves",),
    ),
    Mutant(
        "help drops [extra] as markup", "toolkit/cli_run.py",
        'if app.rich_markup_mode == "rich":', "if False:",
        ("tests/test_cli_output.py::test_help_shows_the_extra_to_install_as_written[export]",),
    ),
    Mutant(
        "--quiet hides nothing", "toolkit/progress.py",
        "    if not quiet:\n        yield", "    if True:\n        yield",
        ("tests/test_cli_output.py::test_quiet_export_prints_the_digest_alone",),
    ),
    Mutant(
        "export's stage lines wait in the buffer", "toolkit/progress.py",
        'print(f"{text}...", flush=True)', 'print(f"{text}...")',
        ("tests/test_cli_output.py::test_export_says_each_stage_as_it_starts",),
    ),
    Mutant(
        "--json without its format", "toolkit/jsonout.py",
        '{"format": JSON_FORMAT, **rounded(obj)}', "rounded(obj)",
        ("tests/test_cli_output.py::test_every_json_output_starts_with_its_format_and_rounds_to_"
         "six_decimals[classify]",),
    ),
    Mutant(
        "--json floats unrounded", "toolkit/jsonout.py",
        "return round(value, DECIMALS)", "return value",
        ("tests/test_cli_output.py::test_every_json_output_starts_with_its_format_and_rounds_to_"
         "six_decimals[eval]",),
    ),
    # serve protocols (issue 32)
    Mutant(
        "KServe labels without the calibrated threshold", "toolkit/serve/kserve.py",
        '"data": classifier.decide_labels(proba)},',
        '"data": [classifier.labels[i] for i in proba.argmax(axis=1)]},',
        ("tests/test_serve_protocols.py::"
         "test_kserve_labels_follow_the_calibrated_threshold",),
    ),
    Mutant(
        "KServe probabilities column-major", "toolkit/serve/kserve.py",
        '"data": proba.ravel().tolist()}}',
        '"data": proba.T.ravel().tolist()}}',
        ("tests/test_serve_protocols.py::"
         "test_kserve_inference_answers_the_documented_request_as_the_classifier",),
    ),
    Mutant(
        "KServe serves any model name", "toolkit/serve/kserve.py",
        "if model != name:",
        "if False:",
        ("tests/test_serve_protocols.py::"
         "test_kserve_health_and_metadata",),
    ),
    Mutant(
        "KServe takes any input name", "toolkit/serve/kserve.py",
        "if len(inputs) != 1 or inputs[0].name != INPUT:",
        "if len(inputs) != 1:",
        ("tests/test_serve_protocols.py::"
         "test_kserve_refusals_are_the_protocols_error_object[an unknown input]",),
    ),
    Mutant(
        "KServe takes any datatype", "toolkit/serve/kserve.py",
        'if tensor.datatype != "BYTES":',
        "if False:",
        ("tests/test_serve_protocols.py::"
         "test_kserve_refusals_are_the_protocols_error_object"
         "[a datatype other than BYTES]",),
    ),
    Mutant(
        "KServe takes a shape that is not its data's", "toolkit/serve/kserve.py",
        "if tensor.shape != [len(tensor.data)]:",
        "if False:",
        ("tests/test_serve_protocols.py::"
         "test_kserve_refusals_are_the_protocols_error_object"
         "[a shape that is not the data's]",),
    ),
    Mutant(
        "KServe errors in spamkit's shape", "toolkit/serve/errors.py",
        'return KSERVE_STATUS.get(status, status), {"error": message}',
        'return status, {"detail": message}',
        ("tests/test_serve_protocols.py::"
         "test_kserve_refusals_are_the_protocols_error_object[an unknown output]",),
    ),
    Mutant(
        "KServe's body limit not applied", "toolkit/serve/guard.py",
        'and path.endswith("/infer"))',
        "and False)",
        ("tests/test_serve_protocols.py::"
         "test_kserve_refusals_are_the_protocols_error_object"
         "[a body over the byte limit]",),
    ),
    Mutant(
        "TEI puts the most probable label first", "toolkit/serve/tei.py",
        "key=lambda j: (j != decided, -scores[j])",
        "key=lambda j: -scores[j]",
        ("tests/test_serve_protocols.py::"
         "test_tei_puts_the_calibrated_label_first",),
    ),
    Mutant(
        "TEI ignores raw_scores", "toolkit/serve/tei.py",
        "scores = logits if body.raw_scores else proba",
        "scores = proba",
        ("tests/test_serve_protocols.py::"
         "test_tei_predict_answers_the_documented_requests_as_the_classifier",),
    ),
    Mutant(
        "TEI takes a pair of texts as one", "toolkit/serve/tei.py",
        "        if len(inputs) == 1:",
        "        if True:",
        ("tests/test_serve_protocols.py::"
         "test_tei_refusals_are_its_error_response[a pair of texts]",),
    ),
    Mutant(
        "TEI's full queue is 503", "toolkit/serve/errors.py",
        "TEI_STATUS = {503: 429, 500: 424}",
        "TEI_STATUS = {500: 424}",
        ("tests/test_serve_protocols.py::"
         "test_tei_refusals_are_its_error_response[a full queue]",),
    ),
    Mutant(
        "metrics without the process series", "toolkit/serve/metrics.py",
        "        ProcessCollector(registry=registry)",
        "        pass",
        ("tests/test_serve_protocols.py::"
         "test_metrics_come_from_prometheus_client_with_the_process_series",),
    ),
    Mutant(
        "metrics count a protocol's status, not what it means", "toolkit/serve/guard.py",
        'state.get("outcome") or outcome_of(status[0])',
        "outcome_of(status[0])",
        ("tests/test_serve_protocols.py::"
         "test_metrics_come_from_prometheus_client_with_the_process_series",),
    ),
    Mutant(
        "the access log ignores --log-level", "toolkit/serve/access.py",
        "LOGGER.setLevel(LOG_LEVELS[level])",
        "LOGGER.setLevel(logging.INFO)",
        ("tests/test_serve_protocols.py::"
         "test_the_access_log_follows_the_log_level[warning-False]",),
    ),
    Mutant(
        "--model-name unchecked", "toolkit/serve/config.py",
        "if not MODEL_NAME.fullmatch(self.model_name):",
        "if False:",
        ("tests/test_serve_protocols.py::"
         "test_a_model_name_that_is_not_one_path_segment_is_refused",),
    ),
    # The data file given once (issue 32)
    Mutant(
        "the recorded data file is not looked for", "toolkit/data.py",
        '    if not given:\n        given, origin = remembered_data(cache_dir), "remembered',
        '    if False:\n        given, origin = remembered_data(cache_dir), "remembered',
        ("tests/test_data_remembered.py::test_a_file_given_once_is_used_by_every_later_command",),
    ),
    Mutant(
        "as trained takes any data file", "toolkit/data.py",
        "    if cfg.sha256 is not None and found != cfg.sha256:",
        "    if False:",
        ("tests/test_data_remembered.py::"
         "test_eval_as_trained_refuses_another_file_and_takes_it_when_named",
         "tests/reliability/test_interrupts.py::"
         "test_resume_refuses_a_data_file_changed_since_the_run_started"),
    ),
    Mutant(
        "a named data file is checked against the training data's sha256", "toolkit/data.py",
        "        return replace(self, path=path, sha256=None) if path else self",
        "        return replace(self, path=path) if path else self",
        ("tests/test_data_remembered.py::"
         "test_eval_as_trained_refuses_another_file_and_takes_it_when_named",),
    ),
    # The runtime-only install and onnxruntime-web from npm (issue 32)
    Mutant(
        "the wasm back in the wheel", "pyproject.toml",
        '"spamkit.web" = ["static/*", "package-lock.json"]',
        '"spamkit.web" = ["static/*", "package-lock.json", '
        '"node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"]',
        ("tests/test_slim_install.py::"
         "test_the_cpu_install_is_onnxruntime_numpy_tiktoken_and_5_mb_of_spamkit",),
    ),
    Mutant(
        "typer back in the base install", "pyproject.toml",
        '    "tiktoken>=0.7",\n]', '    "tiktoken>=0.7",\n    "typer>=0.12",\n]',
        ("tests/test_slim_install.py::"
         "test_the_cpu_install_is_onnxruntime_numpy_tiktoken_and_5_mb_of_spamkit",),
    ),
    Mutant(
        "the spamkit command without its cli extra is a traceback", "toolkit/__main__.py",
        "except ImportError as e:  # typer or tqdm: an install without the cli extra",
        "except NotImplementedError as e:",
        ("tests/test_slim_install.py::"
         "test_the_spamkit_command_without_the_cli_extra_says_what_to_install[spamkit --help]",),
    ),
    Mutant(
        "a changed onnxruntime-web package in the cache is used", "toolkit/web/ort_web.py",
        "    if not matches(data, pin):", "    if False:",
        ("tests/test_web_download.py::test_a_changed_package_in_the_cache_is_refused_in_one_line",),
    ),
    Mutant(
        "an onnxruntime-web download is kept unchecked", "toolkit/web/ort_web.py",
        "        if not matches(tmp.read_bytes(), pin):", "        if False:",
        ("tests/test_web_download.py::"
         "test_a_download_that_is_not_the_pinned_package_is_refused_and_not_kept",),
    ),
    Mutant(
        "no network for onnxruntime-web is a traceback", "toolkit/web/ort_web.py",
        "except (OSError, ValueError, HTTPException) as e:", "except ValueError as e:",
        ("tests/test_web_download.py::"
         "test_offline_without_the_package_says_what_to_do_in_one_line",),
    ),
    Mutant(
        "a pinned package without a file the page loads makes a broken page",
        "toolkit/web/ort_web.py", "    if missing:\n", "    if False:\n",
        ("tests/test_web_download.py::"
         "test_a_pinned_package_without_a_file_the_page_loads_is_refused",),
    ),
    # train --init of a transformers classifier (issue 30)
    Mutant(
        "an unknown --init taken for a folder", "toolkit/config.py",
        "    if init in INITS or is_hub_reference(init) or Path(init).expanduser().is_dir():",
        "    if True:",
        ("tests/reliability/test_cli_errors.py::test_a_bad_option_is_one_usage_line_and_exit_2"
         "[train --init gpt3]",),
    ),
    Mutant(
        "--weights beside a classifier's --init ignored", "toolkit/config.py",
        "        if self.weights:\n", "        if False:\n",
        ("tests/test_train_init_hf.py::test_what_would_start_over_is_refused_in_one_line"
         "[--weights besides]",),
    ),
    Mutant(
        "--token first read from a classifier of the last token", "toolkit/config.py",
        '        if self.token != "last":', "        if False:",
        ("tests/test_train_init_hf.py::test_what_would_start_over_is_refused_in_one_line"
         "[the first token]",),
    ),
    Mutant(
        "--init of a folder without config.json read", "toolkit/training/hf_classifier.py",
        "    if not (folder / CONFIG_FILE).is_file():", "    if False:",
        ("tests/test_train_init_hf.py::test_what_would_start_over_is_refused_in_one_line"
         "[no config.json]",),
    ),
    Mutant(
        "--init of a spamkit checkpoint read as a transformers one",
        "toolkit/training/hf_classifier.py",
        "    if folder_kind(folder) == SPAMKIT:", "    if False:",
        ("tests/test_train_init_hf.py::test_a_spamkit_checkpoint_is_not_taken_for_a_transformers_"
         "classifier",),
    ),
    Mutant(
        "a classifier trained on data of other labels", "toolkit/training/build.py",
        "    if sorted(labels) != sorted(splits.labels):", "    if False:",
        ("tests/test_train_init_hf.py::test_what_would_start_over_is_refused_in_one_line"
         "[other labels]",),
    ),
    Mutant(
        "a --preset other than the weights' shape ignored", "toolkit/training/build.py",
        "    if cfg.preset and shape != cfg.preset:", "    if False:",
        ("tests/test_train_init_hf.py::test_what_would_start_over_is_refused_in_one_line"
         "[another preset]",),
    ),
    Mutant(
        "a resumed run counts the classes in the data's order", "toolkit/training/resume.py",
        '        "labels": labels,', '        "labels": None,',
        ("tests/test_train_init_hf.py::test_an_interrupted_run_resumes_in_the_classifiers_label_"
         "order",),
    ),
    # make compare from one Hugging Face folder (issue 30)
    Mutant(
        "compare takes an --hf-dir without config.json", "benchmarks/compare.py",
        '    if args.hf_dir is not None and not (args.hf_dir / "config.json").is_file():',
        "    if False:",
        ("tests/test_bench.py::test_compare_refuses_an_hf_dir_that_save_pretrained_did_not_write",),
    ),
    Mutant(
        "compare measures on after a failed export", "benchmarks/compare.py",
        "    if done.returncode:", "    if False:",
        ("tests/test_bench.py::test_compare_stops_on_a_folder_spamkit_export_refuses",),
    ),
    Mutant(
        "compare measures a rewritten folder's stale exports", "benchmarks/compare.py",
        "    if (exports / MADE_FROM).is_file() and (exports / MADE_FROM).read_text() == state:",
        "    if (exports / MADE_FROM).is_file():",
        ("tests/test_bench.py::test_compare_runs_every_route_from_a_users_hugging_face_folder",),
    ),
    # Docs: guides apart from measurements (issue 31)
    Mutant(
        "a linked docs heading renamed", "docs/serving.md", "\n## Measurements\n",
        "\n## Measured\n",
        ("tests/test_docs.py::test_every_relative_link_and_anchor_resolves[development.md]",),
    ),
    Mutant(
        "a guide's figure back in its how-to", "docs/scoring.md",
        "(default 1024; how little memory: [Measurements](#measurements)).",
        "(default 1024; a 40 MB CSV scores within ~12 MiB of Python memory).",
        ("tests/test_docs.py::test_a_guide_keeps_its_measured_figures_in_a_final_measurements_"
         "section[scoring.md]",),
    ),
    Mutant(
        "a results page that does not say how to reproduce it", "docs/experiments.md",
        "Results, reproduced by `spamkit train` with the flags of each row (the book's "
        "experiments), `python\nbenchmarks/seeds.py -- FLAGS` (accuracy from random weights, "
        "over seeds) and `make demo` (two\nmodels of the recipe in bold and one pretrained, "
        "joined by `spamkit ensemble`). ",
        "Results. ",
        ("tests/test_docs.py::test_a_results_page_says_first_which_command_reproduces_it"
         "[experiments.md]",),
    ),
    # Pretraining on unlabelled text (issue 33)
    Mutant(
        "--init-seed leaves the init as --seed drew it", "toolkit/training/train.py",
        "    torch.manual_seed(cfg.weights_seed)", "    torch.manual_seed(cfg.seed)",
        ("tests/test_train.py::test_another_init_seed_trains_another_model_on_the_same_split",),
    ),
    Mutant(
        "seeds.py --members scores its first model alone", "benchmarks/seeds.py",
        '        spamkit("ensemble", *map(str, outs), *data, "--out", str(ensemble))',
        '        spamkit("ensemble", *map(str, outs[:1] * 2), *data, "--out", str(ensemble))',
        ("tests/test_seeds.py::test_seeds_scores_the_mean_of_several_models_on_each_split",),
    ),
    Mutant(
        "train fine-tunes a language model of another split", "toolkit/training/lm.py",
        "    if theirs != ours:", "    if False:",
        ("tests/test_pretrain.py::"
         "test_train_refuses_a_trunk_whose_text_may_hold_its_test_messages",),
    ),
    Mutant(
        "an ensemble averages logits, not probabilities", "toolkit/training/model.py",
        "        return torch.logsumexp(log_p, dim=0) - math.log(len(self.members))",
        "        return log_p.mean(dim=0)",
        ("tests/test_ensemble.py::"
         "test_an_ensemble_answers_with_the_mean_of_its_members_probabilities",),
    ),
    Mutant(
        "an ensemble joins a member of another split", "toolkit/training/ensemble.py",
        "    if split != other_split:", "    if False:",
        ("tests/test_ensemble.py::test_members_that_would_not_answer_alike_are_refused"
         "[another split]",),
    ),
    Mutant(
        "pretrain --force refuses its own earlier output", "toolkit/outputs.py",
        '           for fmt in ("spamkit-checkpoint", PRETRAINED_FORMAT)):',
        '           for fmt in ("spamkit-checkpoint",)):',
        ("tests/test_pretrain.py::"
         "test_a_second_pretrain_into_the_same_out_needs_force_and_then_replaces_it",),
    ),
    Mutant(
        "pretraining reads messages equal to a held-out one", "toolkit/unlabelled.py",
        "    kept = [t for t in texts if t not in held_out]",
        "    kept = list(texts)",
        ("tests/test_pretrain.py::test_validation_and_test_messages_never_enter_the_text",),
    ),
    Mutant(
        "export takes a pretrained language model for a checkpoint",
        "toolkit/training/checkpoint.py",
        "    if peek_format_json(path / CONFIG_FILE, PRETRAINED_FORMAT) is not None:",
        "    if False:",
        ("tests/test_pretrain.py::test_export_says_to_fine_tune_a_language_model_first",),
    ),
    Mutant(
        "train --init a pretrained trunk of another preset", "toolkit/training/build.py",
        '        check_preset(cfg, model, f"the weights pretrained in {cfg.init}")',
        "        pass",
        ("tests/test_pretrain.py::test_train_refuses_a_preset_the_trunk_is_not",),
    ),
    Mutant(
        "train --init a trunk of another tokenizer", "toolkit/training/lm.py",
        '    if config.get("tokenizer") != TOKENIZER:',
        "    if False:",
        ("tests/test_pretrain.py::test_train_refuses_a_trunk_of_another_tokenizer",),
    ),
    Mutant(
        "pretrain blocks beyond the model's context", "toolkit/training/pretrain.py",
        "    if cfg.seq_len > model.config.context_length:",
        "    if False:",
        ("tests/test_pretrain.py::test_pretrain_refuses_what_cannot_run",),
    ),
    Mutant(
        "pretrain holds out a share outside 0..1", "toolkit/config.py",
        "        if not 0 < self.held_out < 1:",
        "        if False:",
        ("tests/test_pretrain.py::test_pretrain_refuses_what_cannot_run",),
    ),
    Mutant(
        "pretrain --resume takes settings it ignores", "toolkit/cli.py",
        "    if resume and given:", "    if False:",
        ("tests/test_pretrain.py::test_an_interrupted_pretrain_resumes_to_the_uninterrupted_"
         "result",),
    ),
    Mutant(
        "pretrain --resume reads text that changed", "toolkit/training/pretrain.py",
        '    if kept["text_sha256"] != record["text_sha256"]:', "    if False:",
        ("tests/test_pretrain.py::test_an_interrupted_pretrain_resumes_to_the_uninterrupted_"
         "result",),
    ),
    Mutant(
        "train --resume continues a pretraining as a classifier", "toolkit/training/train.py",
        '    if saved and "pretrain" in saved.meta:', "    if False:",
        ("tests/test_pretrain.py::test_an_interrupted_pretrain_resumes_to_the_uninterrupted_"
         "result",),
    ),
    Mutant(
        "pretrain --resume continues a classifier's training", "toolkit/training/pretrain.py",
        "    if kept is None:", "    if False:",
        ("tests/test_pretrain.py::test_pretrain_does_not_resume_a_classifiers_training",),
    ),
    Mutant(
        "pretrain --nproc trains each process apart", "toolkit/training/pretrain.py",
        "    nets = Nets(model, net, parallel(run, net))", "    nets = Nets(model, net, net)",
        ("tests/test_pretrain.py::test_two_processes_pretrain_as_one",),
    ),
    Mutant(
        "pretrain on no text at all", "toolkit/unlabelled.py",
        "    if not texts:", "    if False:",
        ("tests/test_pretrain.py::test_pretrain_refuses_what_cannot_run",),
    ),
    Mutant(
        "train --init a pretrained trunk ignores --weights", "toolkit/config.py",
        "        if pretrained and self.weights:", "        if False:",
        ("tests/test_pretrain.py::test_train_refuses_gpt2_weights_beside_a_pretrained_trunk",),
    ),
    # Threads in the browser (issue 34)
    Mutant(
        "the page reloads for its service worker again and again",
        "toolkit/web/static/isolation.js",
        "    if (s.getItem(RELOADED)) return false;",
        "    if (false) return false;",
        ("tests/test_web_threads.py::test_a_service_worker_that_cannot_control_the_page_"
         "reloads_it_once_not_again",),
    ),
    Mutant(
        "the page reloads where it is isolated already", "toolkit/web/static/isolation.js",
        "  if (globalThis.crossOriginIsolated) {",
        "  if (false) {",
        ("tests/test_web_threads.py::test_spamkit_web_serve_isolates_the_page_on_its_first_"
         "load_until_ctrl_c",),
    ),
    Mutant(
        "the service worker rewrites redirects", "toolkit/web/static/isolation-sw.js",
        '  if (response.type !== "basic") return response;',
        "",
        ("tests/test_web_threads.py::test_the_service_worker_leaves_a_redirect_as_the_server_"
         "sent_it",),
    ),
    Mutant(
        "the service worker's COEP does not isolate", "toolkit/web/static/isolation-sw.js",
        '"Cross-Origin-Embedder-Policy": "require-corp",',
        '"Cross-Origin-Embedder-Policy": "unsafe-none",',
        ("tests/test_web_threads.py::test_a_plain_static_server_gets_threads_after_one_reload",),
    ),
    Mutant(
        "the isolated page runs one thread", "toolkit/web/static/app.js",
        "isolation.isolated ? navigator.hardwareConcurrency || 1 : 1;",
        "1;",
        ("tests/test_web_threads.py::test_a_plain_static_server_gets_threads_after_one_reload",),
    ),
    # The right graph per backend (issue 34)
    Mutant(
        "WebGPU runs the fp32 graph with its fused attention", "toolkit/web/static/app.js",
        "names: [site.webgpu_graph, ...files.slice(1)] };", "names: files };",
        ("tests/test_web.py::test_with_a_gpu_the_page_runs_webgpu_and_answers_as_python_on_fp32",),
    ),
    Mutant(
        "a WebGPU that fails to start leaves the page broken", "toolkit/web/static/app.js",
        "      why = `it failed to start: ${e.message}`;", "      throw e;",
        ("tests/test_web.py::test_where_webgpu_fails_to_start_the_page_falls_back_to_"
         "webassembly",),
    ),
    Mutant(
        "the page tries WebGPU without an adapter", "toolkit/web/static/app.js",
        'return adapter ? null : "this browser found no GPU adapter for it";', "return null;",
        ("tests/test_web.py::test_the_page_classifies_sms_messages_as_the_python_runtime_does",),
    ),
    Mutant(
        "WebGPU's written-out attention lets a token see the ones after it",
        "toolkit/web/webgpu_graph.py",
        '"Greater", ["causal.cols", "causal.rows"]', '"Greater", ["causal.rows", "causal.cols"]',
        ("tests/test_webgpu_graph.py::test_the_webgpu_graph_answers_as_the_fp32_graph_on_short_"
         "and_long_messages",),
    ),
    Mutant(
        "spamkit web --serve without COOP", "toolkit/web/server.py",
        '{"Cross-Origin-Opener-Policy": "same-origin",',
        '{"Cross-Origin-Opener-Policy": "unsafe-none",',
        ("tests/test_web_threads.py::test_spamkit_web_serve_isolates_the_page_on_its_first_"
         "load_until_ctrl_c",),
    ),
    Mutant(
        "spamkit web --serve on a busy port says errno", "toolkit/web/server.py",
        "    except OSError as e:",
        "    except ImportError as e:",
        ("tests/test_web_threads.py::test_spamkit_web_serve_on_a_busy_port_is_one_line_and_"
         "writes_nothing",),
    ),
    Mutant(
        "spamkit web --serve dies of SIGTERM", "toolkit/web/server.py",
        "    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))",
        "    pass",
        ("tests/test_web_threads.py::test_spamkit_web_serve_stops_on_sigterm_with_exit_0",),
    ),
    # Held out, then folded in (issue 29)
    Mutant(
        "tokenizer special ids may repeat", "runtime/tokenizer.py",
        "if len(set(ids)) != len(ids) or any(i < len(ranks) for i in ids):",
        "if any(i < len(ranks) for i in ids):",
        (f"{MANIFEST}::test_a_tampered_and_rechecksummed_tokenizer_is_refused_in_one_line"
         "[two special tokens with one id]",),
    ),
    Mutant(
        "tokenizer ranks may hold an empty byte sequence", "runtime/tokenizer.py",
        'if len(decoded) != len(ranks) or b"" in decoded:',
        "if len(decoded) != len(ranks):",
        (f"{MANIFEST}::test_a_tampered_and_rechecksummed_tokenizer_is_refused_in_one_line"
         "[an empty rank]",),
    ),
    Mutant(
        "bytes taken as a list of texts", "runtime/classifier.py",
        "if isinstance(texts, (bytes, bytearray)):",
        "if False:",
        (f"{RUNTIME_INPUT}::test_bytes_in_place_of_a_list_is_a_type_error",),
    ),
    Mutant(
        "threshold= on a many-class model picks its second label", "runtime/classifier.py",
        "            if len(self.labels) != 2:",
        "            if False:",
        ("tests/reliability/test_runtime_arguments.py::test_a_threshold_without_a_calibrated_"
         "label_needs_two_classes",),
    ),
    Mutant(
        "a precision the bundle lacks is opened", "runtime/device.py",
        "    if precision not in manifest.graphs:",
        "    if False:",
        ("tests/test_runtime.py::test_asking_for_a_graph_the_bundle_lacks_names_what_it_has",),
    ),
    Mutant(
        "batches past the token cap", "runtime/batching.py",
        "(len(rows) + 1) * lengths[i] > batch_tokens",
        "False",
        ("tests/test_runtime.py::test_no_batch_holds_more_padded_tokens_than_the_cap",),
    ),
    Mutant(
        "a bad option's error spread over lines", "toolkit/cli_run.py",
        "print(f\"spamkit: error: {' '.join(e.format_message().split())}\", file=sys.stderr)",
        'print(f"spamkit: error: {e.format_message()}", file=sys.stderr)',
        ("tests/reliability/test_cli_errors.py::test_a_line_separator_in_an_argument_is_still_"
         "one_error_line",),
    ),
    Mutant(
        "an OSError ends in a traceback", "toolkit/cli_run.py",
        "    except OSError as e:",
        "    except NotImplementedError as e:",
        ("tests/test_cli.py::test_answers_that_cannot_be_written_are_one_error_line",),
    ),
    Mutant(
        "export keeps an ORT graph that differs from the .onnx", "export/ort_format.py",
        "        if not diff == 0:",
        "        if False:",
        ("tests/test_ort_format.py::test_an_ort_graph_that_computes_otherwise_is_refused_by_"
         "export",),
    ),
    Mutant(
        "a NaN difference passes export's parity check", "export/bundle.py",
        "    if not check.max_diff <= allowed:",
        "    if check.max_diff > allowed:",
        ("tests/test_devices.py::test_a_model_whose_weights_overflow_fp16_is_refused_at_export",),
    ),
    Mutant(
        "export's comparison with PyTorch drops NaN", "export/verify.py",
        "worst = float(np.max(np.abs(got - want), initial=0.0))",
        "worst = float(np.nanmax(np.abs(got - want), initial=0.0))",
        ("tests/test_devices.py::test_a_model_whose_weights_overflow_fp16_is_refused_at_export",),
    ),
    Mutant(
        "an unknown int8 target taken by the API", "export/targets.py",
        "    if name not in TARGETS:",
        "    if False:",
        ("tests/test_export.py::test_an_unknown_int8_target_is_refused_before_any_work",),
    ),
    Mutant(
        "an SMS line with an empty label", "toolkit/data.py",
        "if not tab or not label.strip():",
        "if not tab:",
        ("tests/test_data.py::test_sms_line_with_an_empty_label_names_the_line",),
    ),
    Mutant(
        "a table row without a label", "toolkit/data.py",
        "        if not record.id.strip():",
        "        if False:",
        ("tests/test_data.py::test_a_table_row_without_a_label_names_the_line",),
    ),
    Mutant(
        "a zip member over 8 MiB unpacked", "toolkit/data.py",
        "    if len(data) > MAX_SMS_BYTES:",
        "    if False:",
        (f"{PARSING}::test_a_zip_bomb_given_to_data_is_refused_unpacked",),
    ),
    Mutant(
        "a JSON id that is neither string nor number", "toolkit/records.py",
        "if not isinstance(ident, (str, int, float)) or isinstance(ident, bool):",
        "if False:",
        (f"{PARSING}::test_a_json_id_that_is_neither_string_nor_number_is_refused_naming_the_"
         "line",),
    ),
    Mutant(
        "bench's options checked only in the measuring process", "toolkit/jobs/bench.py",
        "            check_load_options(self.threads, self.precision, self.device)",
        "            pass",
        ("tests/test_bench.py::test_a_bench_config_refuses_what_the_measuring_process_would",),
    ),
    Mutant(
        "calibrate a label the model lacks", "toolkit/jobs/evaluate.py",
        "    if label not in model.labels:",
        "    if False:",
        ("tests/test_report.py::test_calibrate_refuses_what_it_cannot_store_and_changes_nothing"
         "[another-label]",),
    ),
    Mutant(
        "a precision target outside (0, 1]", "toolkit/jobs/evaluate.py",
        "    if not 0 < target <= 1:",
        "    if False:",
        ("tests/test_report.py::test_calibrate_refuses_what_it_cannot_store_and_changes_nothing"
         "[zero]",),
    ),
    Mutant(
        "checkpoint labels that do not match its classes", "toolkit/training/checkpoint.py",
        "    if len(labels) != model_cfg.num_classes:",
        "    if False:",
        ("tests/test_cli.py::test_export_of_a_checkpoint_with_more_labels_than_classes_names_"
         "both",),
    ),
    Mutant(
        "the page and Node port take repeated labels", "toolkit/web/static/preprocess.js",
        " || new Set(m.labels).size !== m.labels.length) {",
        ") {",
        ("tests/test_node_port.py::test_node_refuses_a_manifest_out_of_the_format_in_one_line"
         "[a label twice]",),
    ),
    Mutant(
        "the page and Node port take any threshold", "toolkit/web/static/preprocess.js",
        "if (t != null && (!m.labels.includes(t.label) || !(t.value >= 0 && t.value <= 1))) {",
        "if (false) {",
        ("tests/test_node_port.py::test_node_refuses_a_manifest_out_of_the_format_in_one_line"
         "[a threshold for another label]",),
    ),
    Mutant(
        "the page and Node port answer a NaN logit", "toolkit/web/static/preprocess.js",
        "if (!z.every(Number.isFinite)) throw",
        "if (false) throw",
        ("tests/test_node_port.py::test_node_refuses_logits_that_are_not_one_finite_number_per_"
         "label[NaN]",),
    ),
    Mutant(
        "the page and Node port read logits of another shape", "toolkit/web/static/preprocess.js",
        "if (logits.dims.length !== 2 || logits.dims[0] !== rows.length || "
        "logits.dims[1] !== classes) {",
        "if (false) {",
        ("tests/test_node_port.py::test_node_refuses_logits_that_are_not_one_finite_number_per_"
         "label[one column]",),
    ),
    Mutant(
        "the page and Node port take another tokenizer regex", "toolkit/web/static/preprocess.js",
        "if (!data || data.pat_str !== GPT2_PAT_STR || !Array.isArray(data.ranks) ||",
        "if (!data || !Array.isArray(data.ranks) ||",
        ("tests/test_node_port.py::test_node_refuses_a_rechecksummed_tokenizer_with_another_"
         "regex",),
    ),
    Mutant(
        "the Node port reads a --jsonl line that is no string", "ports/node/classify.mjs",
        'if (typeof text !== "string") throw',
        "if (false) throw",
        ("tests/test_node_port.py::test_node_refuses_a_jsonl_line_that_is_not_a_string_before_"
         "reading_the_bundle",),
    ),
    # CLI, training and web (issue 28)
    Mutant(
        "dropout taken from a checkpoint unchecked", "toolkit/config.py",
        "or not 0 <= self.dropout < 1):",
        "or False):",
        (f"{CHECKPOINTS}::test_a_damaged_checkpoint_config_is_refused_before_building",),
    ),
    Mutant(
        "train --resume ignores the options given", "toolkit/cli.py",
        'refuse_other_settings(out, given_options(ctx, {"out", "resume", "nproc", "force"}))',
        "pass",
        (f"{INTERRUPTS}::test_resume_refuses_settings_other_than_the_runs_own",),
    ),
    Mutant(
        "web site without the bundle's subfolders", "toolkit/web/site.py",
        "(tmp / \"bundle\" / name).parent.mkdir(parents=True, exist_ok=True)",
        "pass",
        ("tests/test_web.py::test_a_bundle_with_its_tokenizer_in_a_subfolder_makes_a_working_"
         "site",),
    ),
    Mutant(
        "the page skips the tokenizer's sha256", "toolkit/web/static/app.js",
        "for (const name of names) {",
        "for (const name of names.slice(1)) {",
        ("tests/test_web.py::test_the_page_refuses_any_file_changed_after_the_site_was_written",),
    ),
    Mutant(
        "the Node port skips the tokenizer's sha256", "ports/node/classify.mjs",
        "JSON.parse(readVerified(bundle, manifest, tokenizerFile))",
        "JSON.parse(readFileSync(path.join(bundle, tokenizerFile)))",
        ("tests/test_node_port.py::test_node_refuses_any_changed_file_in_one_line",),
    ),
]


def split_node_id(node_id: str) -> tuple[str, str | None]:
    """"tests/a.py::test_b[x]" -> ("tests/a.py", "test_b"); a bare file has no function."""
    path, _, rest = node_id.partition("::")
    return path, (rest.split("[", 1)[0] or None)


def problems(root: Path = ROOT) -> list[str]:
    """Everything that would make a mutant meaningless: its text not found exactly once, a
    replacement equal to the original, a test file or function that does not exist."""
    found = []
    names = [m.name for m in MUTANTS]
    found += [f"two mutants are named {n!r}" for n in sorted({n for n in names
                                                              if names.count(n) > 1})]
    for m in MUTANTS:
        path = root / m.file
        count = path.read_text(encoding="utf-8").count(m.original) if path.is_file() else 0
        if count != 1:
            found.append(f"{m.name}: {m.original!r} occurs {count} times in {m.file}, not once")
        if m.replacement == m.original:
            found.append(f"{m.name}: the replacement is the original")
        if not m.tests:
            found.append(f"{m.name}: no tests")
        for node in m.tests:
            file, function = split_node_id(node)
            if not (root / file).is_file():
                found.append(f"{m.name}: no test file {file}")
                continue
            tree = ast.parse((root / file).read_text(encoding="utf-8"))
            defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            if function is not None and function not in defined:
                found.append(f"{m.name}: {file} defines no {function}")
    return found
