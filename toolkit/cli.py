"""The commands of `spamkit`, each a function that reads its options, calls the logic in
spamkit.jobs, export, training, serve or web, and prints the result. Heavy imports (torch)
happen inside the commands that need them, so `spamkit classify` starts as fast as the runtime
does. Options shared and built: spamkit.cli_options; help, stdin and errors: spamkit.cli_run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from spamkit import __version__
from spamkit.cli_options import (
    AS_TRAINED_HELP,
    DATA_HELP,
    config_options,
    data_option,
    device_option,
    digest_option,
    given_options,
    json_option,
    one_of,
    precision_option,
    quiet_option,
    threads_option,
)
from spamkit.cli_run import help_for_no_command, run, stdin_lines
from spamkit.config import ENGINES, SPLIT_NAMES, SPLITS, PretrainConfig, TrainConfig
from spamkit.errors import SpamkitError
from spamkit.extras import require
from spamkit.jsonout import json_output
from spamkit.outputs import CHECKPOINT, check_output
from spamkit.progress import quiet_output
from spamkit.runtime.bundle import GRAPHS_SMALLEST_FIRST, RUNTIME_DEVICES
from spamkit.runtime.isa import TARGETS
from spamkit.serve.config import ServeConfig

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, pwsh
    pretty_exceptions_enable=False,
    help="Fine-tune GPT-2 text classifiers, export them to int8 ONNX, classify without torch.",
)


def _show_version(value: bool) -> None:
    if value:
        print(f"spamkit {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print spamkit's version and exit."),
) -> None:
    """spamkit's own options, before any command (the app's help= is its help)."""
    if ctx.invoked_subcommand is None:  # plain `spamkit`
        help_for_no_command(ctx)


@app.command()
def data(
    data: str | None = data_option(),
    split: str = typer.Option("balanced", **one_of(SPLITS),
                              help="balanced (the book's) or full (stratified)."),
    seed: int = typer.Option(123, help="Seed of the split."),
    text_column: str = typer.Option("text", help="Text column of a CSV/TSV."),
    label_column: str = typer.Option("label", help="Label column of a CSV/TSV."),
    forget: bool = typer.Option(False, "--forget", help="Forget the file an earlier `spamkit "
                                "data --data` recorded: commands use the default data again."),
) -> None:
    """Find the data (downloaded once, or the file --data names, which every later command
    then uses) and show its splits."""
    from spamkit.data import DATA_ENV, forget_data, remember_data, resolve_data

    if forget:
        if data:
            raise SpamkitError("--forget and --data contradict each other: give one")
        print("forgot the recorded data file" if forget_data() else "no data file was recorded")
        return
    path = resolve_data(data)
    _show_splits(path, split, seed, text_column, label_column)
    if data or os.environ.get(DATA_ENV):  # read without error: worth remembering
        remember_data(path)
        print(f"recorded: commands given no --data read {path} (`spamkit data --forget` undoes)")


def _show_splits(path: Path, split: str, seed: int, text_column: str, label_column: str) -> None:
    from spamkit.data import read_messages, split_examples

    texts, labels = read_messages(path, text_column, label_column)
    splits = split_examples(texts, labels, split, seed)
    counts = ", ".join(f"{labels.count(n)} {n}" for n in splits.labels)
    print(f"{path}: {len(texts)} messages ({counts})")
    sizes = {k: len(getattr(splits, k)) for k in ("train", "val", "test")}
    print(f"{split} split (seed {seed}): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


@app.command()
@config_options(TrainConfig, "cfg")
def train(
    ctx: typer.Context,
    out: Path = typer.Option(Path("runs/checkpoint"), "--out",
                             help="Checkpoint directory to write."),
    cfg: TrainConfig = TrainConfig(),  # one option per field (config_options)
    data: str | None = data_option(),
    split: str = typer.Option("balanced", **one_of(SPLITS),
                              help="balanced (the book's) or full (stratified)."),
    text_column: str = typer.Option("text", help="Text column of a CSV/TSV."),
    label_column: str = typer.Option("label", help="Label column of a CSV/TSV."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out "
                                "after its last complete epoch, with its original settings."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train as N processes on this machine "
                              "(DistributedDataParallel through torchrun); --batch-size stays "
                              "the global batch."),
    force: bool = typer.Option(False, "--force", help="Replace the checkpoint (or unfinished "
                               "run) already in --out; anything else there is never replaced."),
    threads: int | None = threads_option("PyTorch's CPU threads in each training process "
                                         "(default: $OMP_NUM_THREADS, else the CPUs this "
                                         "process may use, shared among --nproc processes). "
                                         "Not a setting of the run: --resume may change it."),
    quiet: bool = quiet_option(),
) -> None:
    """Fine-tune a GPT classifier and write a checkpoint directory."""
    from spamkit.data import DataConfig
    from spamkit.training.train import train as run_training

    if resume:
        from spamkit.training.resume import refuse_other_settings

        refuse_other_settings(out, given_options(ctx, {"out", "resume", "nproc", "force"}))
    threads = _training_threads(threads, nproc)
    if nproc > 1:  # torchrun starts its workers with it (and then has no notice to print)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    with quiet_output(quiet):
        if _launch_workers(nproc, cfg, out, data, resume, force):
            return
        data_cfg = DataConfig(path=data, split=split, seed=cfg.seed, text_column=text_column,
                              label_column=label_column)
        run_training(cfg, data_cfg, str(out), resume=resume, force=force, threads=threads)


def _training_threads(threads: int | None, nproc: int) -> int:
    """--threads, else OMP_NUM_THREADS (per process: torchrun sets it in each worker it
    starts), else the CPUs this process may use, shared among the --nproc processes (torch
    would give every process all of them)."""
    if threads is not None:
        return threads
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    from spamkit.jobs.measure import usable_cpus

    return max(1, usable_cpus() // nproc)


def _launch_workers(nproc: int, cfg: TrainConfig | PretrainConfig, out: Path, data: str | None,
                    resume: bool, force: bool) -> bool:
    """With --nproc N outside torchrun, run this command as N torchrun workers and return True
    once they are done; False when this process trains itself."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))  # set when torchrun started this process
    if launched > 1 and nproc not in (1, launched):
        raise SpamkitError(f"--nproc {nproc}, but torchrun started {launched} processes: "
                           "leave --nproc out under torchrun")
    if nproc == 1 or launched > 1:
        return False
    if cfg.batch_size % nproc:
        raise SpamkitError(f"--batch-size {cfg.batch_size} is the global batch: it must divide "
                           f"evenly among {nproc} processes")
    if not resume:  # before any worker starts
        check_output(out, CHECKPOINT, force=force, inputs=[data, cfg.weights])
    from spamkit.training.distributed import launch

    code, interrupted = launch(nproc, sys.argv[1:])
    if interrupted:
        raise typer.Exit(130)  # rank 0 has said where to resume from
    if code:
        raise SpamkitError(f"training failed in a worker process (torchrun exit {code})")
    return True


@app.command()
@config_options(PretrainConfig, "cfg")
def pretrain(
    ctx: typer.Context,
    out: Path = typer.Option(Path("runs/pretrained"), "--out",
                             help="Folder to write the language model to."),
    cfg: PretrainConfig = PretrainConfig(),  # one option per field (config_options)
    text: list[str] | None = typer.Option(None, "--text", help="More unlabelled text (may "
                                          "repeat): one message per line, a CSV/TSV's or JSON "
                                          "Lines' --text-column, or a folder of such files."),
    data_text: bool = typer.Option(True, "--data-text/--no-data-text", help="Read the data "
                                   "file's messages outside validation and test too."),
    data: str | None = data_option(),
    split: str = typer.Option("balanced", **one_of(SPLITS), help="The split whose validation "
                              "and test messages are never read: as given to `spamkit train`."),
    text_column: str = typer.Option("text", help="Text column of a CSV/TSV or JSON Lines."),
    label_column: str = typer.Option("label", help="Label column of a CSV/TSV data file."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out "
                                "after its last complete epoch, with its settings and text."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train as N processes on this machine "
                              "(as `spamkit train --nproc`)."),
    force: bool = typer.Option(False, "--force", help="Replace the unfinished run in --out."),
    threads: int | None = threads_option("PyTorch's CPU threads in each process (as `spamkit "
                                         "train --threads`)."),
    quiet: bool = quiet_option(),
) -> None:
    """Train the GPT as a language model on unlabelled text (the data file's messages outside
    validation and test, and --text), for `spamkit train --init OUT`."""
    from spamkit.data import DataConfig
    from spamkit.training.pretrain import Reading
    from spamkit.training.pretrain import pretrain as run_pretraining

    given = given_options(ctx, {"out", "resume", "nproc", "threads", "quiet"})
    if resume and given:
        raise SpamkitError(f"--resume continues {out} with the settings it started with: leave "
                           f"{', '.join('--' + n.replace('_', '-') for n in given)} out")
    threads = _training_threads(threads, nproc)
    if nproc > 1:  # torchrun starts its workers with it
        os.environ["OMP_NUM_THREADS"] = str(threads)
    data_cfg = DataConfig(path=data, split=split, seed=cfg.seed, text_column=text_column,
                          label_column=label_column)
    with quiet_output(quiet):
        if _launch_workers(nproc, cfg, out, data, resume, force):
            return
        run_pretraining(cfg, data_cfg, str(out), Reading(text or [], text_column, data_text),
                        force, resume, threads)


@app.command()
def ensemble(
    checkpoints: list[Path] = typer.Argument(..., metavar="CHECKPOINT...", help="Two or more "
                                             "checkpoints of one shape, labels and data split."),
    out: Path = typer.Option(..., "--out", help="Checkpoint directory to write."),
    data: str | None = data_option(AS_TRAINED_HELP),
    force: bool = typer.Option(False, "--force", help="Replace the checkpoint already in "
                               "--out; anything else there is never replaced."),
) -> None:
    """Join checkpoints into one that answers with the mean of their probabilities."""
    require("torch", "spamkit ensemble")
    from spamkit.training.ensemble import ensemble_checkpoints

    metrics = ensemble_checkpoints(checkpoints, out, data, force)
    final = metrics["final"]
    members = ", ".join(f"{a:.2%}" for a in metrics["member_test_accuracies"] if a is not None)
    print(f"ensemble of {len(checkpoints)} written to {out}: train acc "
          f"{final['train']['accuracy']:.2%}, val acc {final['val']['accuracy']:.2%}, test acc "
          f"{final['test']['accuracy']:.2%} (its members' test acc: {members or 'unknown'})")


@app.command()
def export(
    checkpoint: str = typer.Argument(..., metavar="MODEL", help="Checkpoint directory from "
                                     "`spamkit train`, or a transformers "
                                     "GPT2ForSequenceClassification folder (save_pretrained, "
                                     "with its tokenizer) or hf://org/name[@revision] of one."),
    out: Path = typer.Option(..., "--out", help="Bundle directory to write."),
    int8: bool = typer.Option(False, "--int8", help="Also write the int8 graph for CPUs."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write the fp16 graph for GPUs."),
    ort: bool = typer.Option(False, "--ort", help="Also write each CPU graph in ORT format "
                             "(ONNX Runtime Mobile) and its required_operators.config."),
    keep_fp32: bool = typer.Option(False, "--keep-fp32", help="With --int8 or --fp16, also "
                                   "ship the fp32 graph (without them it is the only graph)."),
    data: str | None = typer.Option(None, "--data", help="Validation data for the checks "
                                    "(default: the checkpoint's training data, refused unless "
                                    "its sha256 matches; for a transformers model, the default "
                                    "data, as `spamkit data` finds it)."),
    force: bool = typer.Option(False, "--force", help="Replace the bundle already in --out; "
                               "anything else there is never replaced."),
    text_input: bool = typer.Option(False, "--text-input", help="Also write, for each graph, "
                                    "a text graph: strings in, logits out, GPT-2's tokenizer "
                                    "inside (needs spamkit[text])."),
    target: str | None = typer.Option(None, "--target", **one_of(("auto", *TARGETS)),
                                      help="CPUs the int8 graph is for: portable (the "
                                      "default: correct on all), x86-avx2, x86-vnni, arm64, "
                                      "or auto (this host's kind); see docs/targets.md."),
    quiet: bool = quiet_option("only the bundle's digest"),
) -> None:
    """Export a checkpoint, or a transformers GPT-2 classifier, to a verified ONNX bundle."""
    if text_input:
        require("onnxruntime_extensions", "--text-input")
    require("torch", "spamkit export")  # named, rather than the first of the train extra missing
    from spamkit.export.bundle import ExportConfig, export_bundle
    from spamkit.runtime.bundle import open_manifest

    with quiet_output(quiet):
        manifest = export_bundle(checkpoint, out, ExportConfig(
            int8=int8, fp16=fp16, ort=ort, keep_fp32=keep_fp32, data=data, force=force,
            text_input=text_input, target=target))
    digest = open_manifest(out)[1]
    if quiet:
        print(digest)
        return
    print(f"bundle written to {out}: {', '.join(manifest.files)}")
    print(f"digest {digest} (pin this bundle with --digest)")


@app.command("eval")
def eval_(
    model: Path = typer.Argument(..., help="A checkpoint directory or a bundle directory."),
    data: str | None = data_option(AS_TRAINED_HELP),
    split: str = typer.Option("test", **one_of(SPLIT_NAMES),
                              help="train, val, test (split as in training), or all "
                              "(every message of --data: for a held-out file of your own)."),
    precision: str | None = typer.Option(None, **one_of(GRAPHS_SMALLEST_FIRST),
                                         help="Bundle graph: int8, fp16 or fp32."),
    device: str = typer.Option("cpu", **one_of(RUNTIME_DEVICES),
                               help="Where a bundle runs: cpu, cuda or auto."),
    as_json: bool = json_option("the report"),
    plots: Path | None = typer.Option(None, "--plots", help="Write confusion_matrix.png and "
                                      "precision_recall.png into this directory (needs "
                                      "spamkit[plots])."),
    digest: str | None = digest_option(),
    quiet: bool = quiet_option("only the report"),
) -> None:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on a split."""
    import numpy as np

    from spamkit.jobs.evaluate import examples_for, load_model, pr_curves, score_examples

    if plots:
        require("matplotlib", "--plots")  # before the scoring, not after it
    with quiet_output(quiet):
        loaded = load_model(model, precision, device, digest)
        examples = examples_for(loaded, data, split)
        rep, probs = score_examples(loaded, examples)
    if plots:
        from spamkit import plots as figures

        figures.confusion_matrix(rep.labels, rep.confusion, plots / "confusion_matrix.png")
        curves = pr_curves(rep.labels, np.array(examples.labels), probs)
        figures.precision_recall(curves, plots / "precision_recall.png")
    if as_json:
        print(json_output({"model": str(model), "split": split, **loaded.isa, **rep.to_json()},
                          indent=2))
    else:
        print(f"{model} on the {split} split")
        if loaded.isa:
            isa = loaded.isa
            print(f"host {isa['host_isa']}; graph built for {isa['graph_target']}")
        print(rep.table())


@app.command()
def calibrate(
    bundle: str = typer.Argument(..., help="Bundle directory to calibrate (updated in place)."),
    target_precision: float = typer.Option(..., help="Precision the positive class must reach "
                                           "on the validation split, e.g. 0.99."),
    data: str | None = data_option(AS_TRAINED_HELP),
    label: str | None = typer.Option(None, help="Positive class (default: the second of two, "
                                        "e.g. spam)."),
    quiet: bool = quiet_option("only the bundle's new digest"),
) -> None:
    """Pick the spam-probability threshold that meets a precision target; store it in the bundle.
    Rewriting the manifest changes the bundle's digest: the new one is printed."""
    from spamkit.jobs.evaluate import calibrate_bundle

    with quiet_output(quiet):
        c = calibrate_bundle(bundle, data, target_precision, label)
    if quiet:
        print(c.digest)
        return
    print(f"threshold {c.threshold:.4f} for {c.label}: precision {c.precision:.2%} (target "
          f"{c.target_precision:.2%}), recall {c.recall:.2%} on {c.messages} validation "
          f"messages; stored in {Path(bundle) / 'manifest.json'}")
    print(f"digest {c.digest} (the bundle's new digest: pin it with --digest)")


def _check_bundle_reference(value: str) -> str:
    """A malformed hf:// reference is a usage error (exit 2), before anything is loaded."""
    from spamkit.runtime.hub import is_hub_reference, parse_reference

    if is_hub_reference(value):
        try:
            parse_reference(value)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
    return value


@app.command()
def classify(
    bundle: str = typer.Argument(..., metavar="BUNDLE", callback=_check_bundle_reference,
                                 help="Bundle directory from `spamkit export`, or hf://org/name "
                                 "(or hf://org/name@revision) for one on the Hugging Face Hub."),
    texts: list[str] | None = typer.Argument(
        None, help="Messages; default: one per line of stdin, each answered as it arrives (only "
        "LF ends a line; the CR of a CRLF is dropped, any other CR is part of the message)."),
    as_json: bool = json_option("one object per message"),
    device: str = device_option(),
    precision: str | None = precision_option(),
    threads: int | None = threads_option(),
    digest: str | None = digest_option(),
) -> None:
    """Classify messages with a bundle (no torch involved)."""
    from spamkit.runtime import Classifier

    clf = Classifier.load(bundle, device=device, threads=threads, precision=precision,
                          digest=digest)
    for batch in [texts] if texts else stdin_lines():
        probs = clf.predict_proba(batch)
        for text, p, label in zip(batch, probs, clf.decide_labels(probs)):
            if as_json:
                scores = {name: float(x) for name, x in zip(clf.labels, p)}
                print(json_output({"text": text, "label": label, "probabilities": scores}))
            else:
                print(f"{label}\t{p.max():.3f}\t{text}")
        sys.stdout.flush()  # each answer leaves as soon as it is known


@app.command()
def web(
    bundle: Path = typer.Argument(..., help="Bundle directory from `spamkit export`."),
    out: Path = typer.Option(..., "--out", help="Directory to write the site to."),
    force: bool = typer.Option(False, "--force", help="Replace the site already in --out; "
                               "anything else there is never replaced."),
    digest: str | None = digest_option(),
    serve: int | None = typer.Option(None, "--serve", min=0, max=65535, metavar="PORT",
                                     help="Then serve the site on 127.0.0.1:PORT (0: any free "
                                     "port) with the headers that let the page run threads, "
                                     "until Ctrl-C."),
    webgpu: bool = typer.Option(True, "--webgpu/--no-webgpu", help="Also carry the fp32 graph "
                                "and onnxruntime-web's WebGPU build, which the page runs where "
                                "the browser has a GPU (the bundle needs an fp32 graph)."),
) -> None:
    """Write a static site that classifies messages in the browser, offline (onnxruntime-web,
    downloaded from npm into the cache on first use: docs/web.md)."""
    from spamkit.web.server import listening, serve_site
    from spamkit.web.site import BACKEND_NAMES, write_site

    with listening(serve, out) as server:  # a busy port: refused before anything is written
        site = write_site(bundle, out, force=force, digest=digest, webgpu=webgpu)
        runs = ", ".join(f"the {graph} graph on {BACKEND_NAMES[name]}"
                         for name, graph in site.graphs.items())
        print(f"site written to {out}: the page runs {runs} (onnxruntime-web)")
        if site.no_webgpu:
            print(f"no WebGPU: {site.no_webgpu}")
        if server is None:
            print(f"serve it, e.g. `python -m http.server -d {out} 8000`, and open "
                  "http://localhost:8000 (or add --serve 8000)")
        else:
            serve_site(server, out)


@app.command()
def bench(
    bundle: Path = typer.Argument(..., help="Bundle directory from `spamkit export`."),
    data: str | None = data_option("Messages to classify. " + DATA_HELP),
    text_column: str | None = typer.Option(None, help="Read --data as `spamkit score` reads "
                                           "its input, labels not needed: this column of a "
                                           "CSV/TSV, this field of JSON Lines, any other "
                                           "file one message per line."),
    device: str = device_option(),
    precision: str | None = precision_option(),
    threads: int | None = threads_option("ONNX Runtime threads (default: the CPUs this process "
                                         "may use)."),
    messages: int = typer.Option(200, help="Batch-1 latency over the first N messages."),
    throughput_messages: int = typer.Option(1000, help="Throughput of one call on a list of "
                                            "the first N messages."),
    warmup: int = typer.Option(10, help="Untimed batch-1 calls before the latency run."),
    batch_size: int = typer.Option(32, min=1, help="Classifier batch size for the list."),
    as_json: bool = json_option("the result"),
    digest: str | None = digest_option(),
    quiet: bool = quiet_option("only the result"),
) -> None:
    """Start-up, batch-1 latency, throughput and peak memory of a bundle, measured in a fresh
    process on real messages (no torch involved)."""
    from spamkit.data import resolve_data
    from spamkit.jobs.bench import BenchConfig, format_table, run_bench
    from spamkit.jobs.measure import MeasureConfig, usable_cpus
    from spamkit.runtime.bundle import open_manifest

    open_manifest(bundle, digest)  # a bad bundle is reported before the data is looked for
    if text_column is not None and data is None:
        raise SpamkitError("--text-column reads a file of your own messages: give it as --data")
    threads = usable_cpus() if threads is None else threads
    cfg = BenchConfig(bundle=str(bundle), threads=threads, device=device, precision=precision,
                      batch_size=batch_size, digest=digest)
    with quiet_output(quiet):
        measure = MeasureConfig(data=str(resolve_data(data)), text_column=text_column,
                                messages=messages, warmup=warmup,
                                throughput_messages=throughput_messages)
        result = run_bench(cfg, measure)
    print(json_output(result, indent=2) if as_json else format_table(result))


@app.command()
def score(
    bundle: Path = typer.Argument(..., help="Bundle directory from `spamkit export`."),
    input: Path = typer.Argument(..., help="Messages: a .csv/.tsv with a header, a .jsonl "
                                 "file of objects, or any other file as one message per line."),
    out: Path = typer.Option(..., "--out", help="Output file, .csv or .jsonl: id, label and "
                             "the probability of each class (p_spam), one row per message."),
    text_column: str = typer.Option("text", help="Text column (CSV) or field (JSONL)."),
    id_column: str | None = typer.Option(None, help="Id column or field (default: the "
                                            "message's number, 1 for the first)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run that "
                                "left OUT.partial, after its last complete row."),
    engine: str = typer.Option("local", **one_of(ENGINES),
                               help="local (this process) or ray (Ray Data actors; needs "
                               "spamkit[ray])."),
    batch_size: int = typer.Option(1024, min=1, help="Messages scored together (one actor call on "
                                   "Ray)."),
    actors: int = typer.Option(1, min=1, help="Ray actors, each with its own copy of the model."),
    address: str | None = typer.Option(None, help="A running Ray cluster (host:port); "
                                       "default: start one on this machine."),
    precision: str | None = typer.Option(None, **one_of(GRAPHS_SMALLEST_FIRST),
                                         help="Graph to run: int8 or fp32."),
    threads: int | None = threads_option("ONNX Runtime threads (per actor)."),
    force: bool = typer.Option(False, "--force", help="Replace the scores file already at "
                               "--out; anything else there (the input above all) is never "
                               "replaced."),
    digest: str | None = digest_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Score a file of any size: one row per message, in order (no torch involved)."""
    from spamkit.jobs.score import ScoreConfig, score_file
    from spamkit.records import Source

    cfg = ScoreConfig(engine=engine, batch_size=batch_size, precision=precision,
                      threads=threads, actors=actors, address=address, resume=resume,
                      digest=digest, force=force)
    with quiet_output(quiet):
        n = score_file(bundle, Source.of(input, text_column, id_column), out, cfg)
        print(f"{n} messages scored into {out}")


@app.command()
@config_options(ServeConfig, "limits")
def serve(
    bundle: Path = typer.Argument(..., help="Bundle directory from `spamkit export`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free one; the address "
                             "is printed)."),
    limits: ServeConfig = ServeConfig(),  # one option per field (config_options)
    device: str = device_option(),
    precision: str | None = precision_option(),
    threads: int | None = threads_option(),
    digest: str | None = digest_option(),
) -> None:
    """Serve a bundle over HTTP (POST /v1/classify, KServe's /v2 and text-embeddings-inference's
    /predict) with dynamic micro-batching; SIGTERM stops it gracefully (no torch involved)."""
    from spamkit.serve.server import Listen, serve_bundle  # a missing extra: one line (cli_run)

    serve_bundle(bundle, limits, Listen(host, port), device=device, precision=precision,
                 threads=threads, digest=digest)


@app.command()
def push(
    bundle: Path = typer.Argument(..., help="Bundle directory from `spamkit export`."),
    repo_id: str = typer.Argument(..., help="Hugging Face Hub model repository, org/name "
                                  "(created if it does not exist)."),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    message: str | None = typer.Option(None, "--message", help="Commit message."),
    dry_run: Path | None = typer.Option(None, "--dry-run", help="Write the files that would "
                                        "be uploaded (the bundle and its model card, "
                                        "README.md) into this new directory instead."),
) -> None:
    """Publish a bundle to the Hugging Face Hub with a model card, for
    Classifier.load("hf://org/name") and `spamkit classify hf://org/name`
    (needs spamkit[hub]; log in with `hf auth login` or set HF_TOKEN)."""
    from spamkit.jobs.push import PushConfig, push_bundle

    where = push_bundle(bundle, PushConfig(repo_id, private, message), dry_run)
    if dry_run is None:
        print(f"{bundle} pushed to hf://{repo_id}: {where}")
    else:
        print(f"{bundle} not pushed: what would be uploaded to {repo_id} is in {where}")


def main() -> None:
    """The `spamkit` command (spamkit.__main__ loads it once the cli extra is found)."""
    run(app)
