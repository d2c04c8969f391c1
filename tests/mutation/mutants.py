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
        "train_net.require_backward_grad_sync = sync",
        "train_net.require_backward_grad_sync = False",
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
        "the runtime reads <|endoftext|> as plain text", "runtime/tokenizer.py",
        "ids = (self.encoding.encode(t[-self.max_chars :], allowed_special={EOT},",
        "ids = (self.encoding.encode(t[-self.max_chars :], allowed_special=set(),",
        ("tests/test_text_graph.py::test_edge_cases_read_alike",
         "tests/test_text_graph.py::test_any_text_gets_the_same_ids_and_logits",
         "tests/test_tokenizer.py::test_endoftext_in_a_message_is_the_end_of_text_token"),
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
