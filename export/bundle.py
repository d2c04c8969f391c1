"""`spamkit export`: checkpoint (or transformers GPT-2 classifier) -> verified, self-contained
bundle: the fp32 graph, and optionally int8 (for CPUs) and fp16 (for GPUs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.data import Splits, load_splits
from spamkit.errors import Interrupted, SpamkitError
from spamkit.export.cross_isa import TARGET_KERNELS, reference_agreement
from spamkit.export.manifest import with_checksums, write_manifest
from spamkit.export.onnx_graph import OPSET, export_onnx, saved_files
from spamkit.export.ort_format import add_ort_graphs
from spamkit.export.quantize import quantize_int8
from spamkit.export.sources import open_source
from spamkit.export.targets import DEFAULT_TARGET, SCHEMES, resolve_target
from spamkit.export.text_graph import check_text_graphs, write_text_graphs
from spamkit.export.verify import Reference, compare_logits
from spamkit.outputs import BUNDLE, check_output, exclusive_output
from spamkit.progress import progress_bar, stage
from spamkit.runtime.bundle import (
    GRAPH_DEVICES,
    GRAPH_FILES,
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    TOKENIZER_FILE,
    Manifest,
    read_capped,
)
from spamkit.runtime.classifier import Classifier
from spamkit.runtime.isa import host_isa
from spamkit.runtime.session import make_session
from spamkit.runtime.text_graph import extensions_library
from spamkit.tokenizer import gpt2_tokenizer

# Largest |logit - the reference's| allowed: atol + rtol * (largest |logit| of the messages
# checked).
FP32_TOLERANCE = (1e-4, 0.0)
# fp16 keeps 11 significant bits, and rounding at every layer adds up with depth and with the
# size of the logits (docs/bundle-format.md). Labels are compared separately (agreement with
# fp32 on val and test).
FP16_TOLERANCE = (1e-2, 1e-2)
VERIFY_MESSAGES = 64
CALIBRATION_MESSAGES = 256
# Every graph is checked on ONNX Runtime's CPU provider, which runs on any machine export runs
# on; for fp16 ops without a CPU kernel ONNX Runtime computes in fp32 between fp16 tensors.
CHECKED_WITH = "CPUExecutionProvider"


@dataclass(frozen=True)
class ExportConfig:
    int8: bool = False  # add the int8 graph, for CPUs
    fp16: bool = False  # add the fp16 graph, for GPUs
    ort: bool = False  # add each CPU graph in ORT format, for ONNX Runtime Mobile
    # With int8 or fp16, also ship the fp32 graph (four bytes a weight where int8 has one);
    # without them it is the bundle's only graph and always shipped.
    keep_fp32: bool = False
    data: str | None = None  # where to find the validation messages (default: as trained)
    force: bool = False  # replace a bundle already at `out` (never anything else)
    # Add each graph's text graph: strings in, GPT-2's BPE inside (onnxruntime-extensions).
    text_input: bool = False

    def __post_init__(self) -> None:
        if self.ort and self.fp16 and not (self.int8 or self.keep_fp32):
            raise SpamkitError("--ort writes the CPU graphs in ORT format, and a bundle of "
                               "--fp16 alone has none: add --int8 or --keep-fp32")
    # The CPUs the int8 graph is for (spamkit.export.targets; None: DEFAULT_TARGET); "auto" is
    # this host's kind.
    target: str | None = None


def export_bundle(checkpoint: str | Path, out: str | Path, cfg: ExportConfig) -> Manifest:
    """Export the model at `checkpoint` to a verified bundle at `out`.

    Args:
        checkpoint: a spamkit checkpoint, a transformers GPT2ForSequenceClassification folder,
            or hf://org/name[@revision] (spamkit.export.sources).
        out: the bundle folder to write (atomically).
        cfg: what to write and check.

    Returns:
        The bundle's manifest.

    Raises:
        SpamkitError: a bad option or model, an `out` that holds anything but a bundle
            `cfg.force` lets it replace, or a graph that fails its checks against the model;
            nothing is left at `out` then. Interrupted: Ctrl-C, saying what `out` holds.
    """
    target = _int8_target(cfg)
    out = Path(out)
    with exclusive_output(out):  # no other spamkit run writes `out` until this one ends
        check_output(out, BUNDLE, force=cfg.force, inputs=[checkpoint, cfg.data])
        before = _manifest_bytes(out)
        try:
            return _export(checkpoint, out, cfg, target)
        except KeyboardInterrupt:
            raise Interrupted(_interrupted(out, before)) from None


def _manifest_bytes(bundle: Path) -> bytes | None:
    try:
        return read_capped(bundle / MANIFEST_FILE, MAX_MANIFEST_BYTES)
    except SpamkitError:
        return None


def _interrupted(out: Path, before: bytes | None) -> str:
    """What Ctrl-C left at `out`, told by its manifest (`before`: as it was at the start): the
    whole new bundle, or nothing of it."""
    now = _manifest_bytes(out)
    if now is not None and now != before:
        return f"interrupted after the bundle was written to {out}"
    kept = f"the bundle in {out} is untouched" if before else f"nothing was written to {out}"
    return f"interrupted before the bundle was complete: {kept}"


def _export(checkpoint: str | Path, out: Path, cfg: ExportConfig, target: str | None
            ) -> Manifest:
    """The work of export_bundle, once `out` is this run's."""
    if cfg.text_input:
        _refuse_without_extensions()
    source = open_source(checkpoint)
    ckpt, reference = source.checkpoint, source.reference
    _refuse_fixed_padding(checkpoint, ckpt.training)
    tokenizer = gpt2_tokenizer(ckpt.config.context_length)
    data_cfg = ckpt.data.with_path(cfg.data)
    splits = load_splits(data_cfg)
    sample = _even_sample(splits.val.texts, VERIFY_MESSAGES)

    with atomic_dir(out) as tmp:
        fp32_path = tmp / GRAPH_FILES["fp32"]
        stage("exporting the fp32 graph")
        export_onnx(ckpt.model, fp32_path)
        verification = {
            **_check_logits(reference, fp32_path, tokenizer, sample, "fp32", FP32_TOLERANCE),
            "verified_on_messages": len(sample), "checked_with": CHECKED_WITH}
        tokenizer.save(tmp / TOKENIZER_FILE)
        graphs = {"fp32": GRAPH_FILES["fp32"]}
        if cfg.int8:
            stage(f"quantizing to int8 for {target} CPUs")
            # Calibrate on training messages: validation and test stay unseen for the checks.
            calibration = tokenizer.encode_batch(
                _even_sample(splits.train.texts, CALIBRATION_MESSAGES))
            quantize_int8(fp32_path, tmp / GRAPH_FILES["int8"], calibration, tokenizer.pad_id,
                          SCHEMES[target])
            graphs["int8"] = GRAPH_FILES["int8"]
        if cfg.fp16:
            fp16_path = tmp / GRAPH_FILES["fp16"]
            stage("exporting the fp16 graph")
            export_onnx(ckpt.model, fp16_path, fp16=True)
            verification |= _check_logits(reference, fp16_path, tokenizer, sample, "fp16",
                                          FP16_TOLERANCE)
            graphs["fp16"] = GRAPH_FILES["fp16"]
        manifest = _new_manifest(ckpt, tokenizer, graphs, verification, target)
        if len(graphs) > 1:
            manifest = _add_label_checks(tmp, tokenizer, manifest, splits)
        if not cfg.keep_fp32 and len(graphs) > 1:
            for f in saved_files(fp32_path):
                f.unlink()
            del graphs["fp32"]
        manifest = replace(manifest, graphs=graphs,
                           devices={p: GRAPH_DEVICES[p] for p in graphs})
        manifest = _add_graph_variants(tmp, manifest, cfg, tokenizer, sample)
        # Last: without its manifest the directory is not a bundle to the runtime.
        manifest = with_checksums(tmp, manifest)
        write_manifest(tmp, manifest)
    return manifest


def _new_manifest(ckpt, tokenizer, graphs: dict[str, str], verification: dict,
                  target: str | None) -> Manifest:
    """The manifest of what export has written so far, before checksums."""
    model_cfg = ckpt.config
    return Manifest(
        labels=ckpt.labels,
        context_length=model_cfg.context_length,
        pad_id=tokenizer.pad_id,
        vocab_size=model_cfg.vocab_size,
        token=model_cfg.token,
        preset=ckpt.preset,
        opset=OPSET,
        graphs=graphs,
        spamkit_version=__version__,
        data={k: v for k, v in asdict(ckpt.data).items() if k != "path"},
        verification=verification,
        int8_target=target,
        checked_on_isa=host_isa().name,
    )


def _add_graph_variants(bundle: Path, manifest: Manifest, cfg: ExportConfig, tokenizer,
                        sample: list[str]) -> Manifest:
    """The manifest with the text graphs (--text-input) and ORT-format graphs (--ort), each
    written beside the graph it was made from and checked against it."""
    if cfg.text_input:
        stage("writing the text graphs")
        manifest = _add_text_graphs(bundle, manifest, tokenizer, sample)
    if cfg.ort:
        stage("writing the graphs in ORT format")
        manifest = add_ort_graphs(bundle, manifest, tokenizer, sample)
    return manifest


def _refuse_without_extensions() -> None:
    """Before any work: --text-input needs onnxruntime-extensions (the `text` extra)."""
    try:
        extensions_library()
    except ImportError as e:
        raise SpamkitError(f"--text-input: {e}") from None


def _add_text_graphs(bundle: Path, manifest: Manifest, tokenizer, sample: list[str]) -> Manifest:
    """The manifest with a text graph beside each graph, checked against it on the validation
    sample and on the messages whose reading the contract spells out."""
    text_graphs = write_text_graphs(bundle, manifest.graphs, tokenizer, tokenizer.pad_id)
    manifest = replace(manifest, text_graphs=text_graphs)
    edge_cases = ["", " ", "<|endoftext|>", "free <|endoftext|> entry", "7" * 70_000, "\0",
                  "see you at 6?\0FREE PRIZE CALL NOW WINNER", "a\n\n\0 \0\0<|endoftext|>"]
    figures = check_text_graphs(bundle, manifest, tokenizer, [*sample, *edge_cases])
    return replace(manifest, verification={**manifest.verification, **figures})


def _int8_target(cfg: ExportConfig) -> str | None:
    """The concrete target of the int8 graph (None without one), checked before any work."""
    if cfg.target is not None and not cfg.int8:
        raise SpamkitError("--target is the int8 graph's: add --int8")
    return resolve_target(cfg.target or DEFAULT_TARGET, host_isa()) if cfg.int8 else None


def _refuse_fixed_padding(checkpoint: str | Path, training: dict) -> None:
    if training.get("pad_to"):
        raise SpamkitError(
            f"{checkpoint} was trained with --pad-to (the book's fixed-length padding, kept for "
            "its experiments); the runtime reads the last real token, so retrain without "
            "--pad-to to export"
        )


def _even_sample(texts: list[str], n: int) -> list[str]:
    """`n` messages taken at even steps through the (shuffled) split."""
    return texts[:: max(len(texts) // n, 1)][:n]


def _check_logits(reference: Reference, graph: Path, tokenizer, sample: list[str],
                  precision: str, tolerance: tuple[float, float]) -> dict[str, float]:
    """Fail the export unless the graph's logits match the reference's; the figures for the
    manifest."""
    check = compare_logits(reference, graph, tokenizer, sample)
    atol, rtol = tolerance
    allowed = atol + rtol * check.max_logit
    print(f"{precision} graph vs {reference.name} on {len(sample)} validation messages: "
          f"max |logit diff| {check.max_diff:.2e} (allowed {allowed:.2e})")
    # Written so that a NaN difference fails too.
    if not check.max_diff <= allowed:
        raise SpamkitError(
            f"the exported {precision} graph disagrees with {reference.name}: max |logit diff| "
            f"{check.max_diff:.2e} > {allowed:.2e}; no bundle written"
        )
    return {f"{precision}_max_abs_logit_diff_vs_torch": check.max_diff,
            f"{precision}_allowed_logit_diff": allowed}


def _compare_with_fp32(bundle: Path, tokenizer, manifest: Manifest, splits: Splits
                       ) -> tuple[dict, list[str]]:
    """Accuracy of every graph, and how often the labels of the smaller ones agree with fp32,
    on the validation and test splits, as an app would see them through the runtime; and the
    fp32 graph's validation labels."""
    report, fp32_val = {}, []
    runners = {
        p: Classifier(make_session(bundle / file, ["CPUExecutionProvider"]),
                      tokenizer, manifest, "cpu", p)
        for p, file in manifest.graphs.items()
    }
    stage("checking each graph's labels on the val and test splits")
    bar = progress_bar(total=2 * len(runners), unit=" graph runs", leave=False)
    for name, part in (("val", splits.val), ("test", splits.test)):
        truth = [splits.labels[y] for y in part.labels]
        preds = _predict_each(runners, part.texts, bar)
        line = f"{name} split ({len(truth)} messages): accuracy "
        line += ", ".join(f"{p} {_agreement(preds[p], truth):.2%}" for p in preds)
        report |= {f"{name}_accuracy_{p}": _agreement(preds[p], truth) for p in preds}
        for p in [p for p in preds if p != "fp32"]:
            agree = _agreement(preds[p], preds["fp32"])
            line += f"; {p} labels agree with fp32 on {agree:.2%}"
            report[f"{name}_{p}_label_agreement"] = agree
        bar.write(line)  # above the bar, on stdout
        if name == "val":
            fp32_val = preds["fp32"]
    bar.close()
    return report, fp32_val


def _predict_each(runners: dict[str, Classifier], texts: list[str], bar) -> dict[str, list[str]]:
    """Each graph's labels for `texts`, a step of the progress `bar` each."""
    preds = {}
    for precision, clf in runners.items():
        preds[precision] = clf.predict(texts)
        bar.update(1)
    return preds


def _add_label_checks(bundle: Path, tokenizer, manifest: Manifest, splits: Splits) -> Manifest:
    """The manifest with each smaller graph's label checks against fp32 added: on this host,
    and for the int8 graph on every kind of CPU its target is for."""
    report, fp32_val = _compare_with_fp32(bundle, tokenizer, manifest, splits)
    if manifest.int8_target is not None:
        report |= _check_other_isas(bundle, tokenizer, manifest, splits.val.texts, fp32_val)
    return replace(manifest, verification={**manifest.verification, **report})


def _check_other_isas(bundle: Path, tokenizer, manifest: Manifest, texts: list[str],
                      fp32_labels: list[str]) -> dict:
    """The int8 graph's label agreement with fp32 (`fp32_labels`, the fp32 graph's for `texts`,
    the validation split) as each kind of CPU the target is for computes it (this host's
    kernels were checked above)."""
    target = manifest.int8_target
    classes = np.array([manifest.labels.index(label) for label in fp32_labels])
    stage(f"checking the int8 graph's labels with the kernels of each CPU {target} is for")
    agreement = reference_agreement(bundle / manifest.graphs["int8"], classes,
                                    tokenizer.encode_batch(texts), tokenizer.pad_id,
                                    TARGET_KERNELS[target])
    print(f"int8 graph for {target} (checked on {host_isa().describe()}): on the val split its "
          "labels agree with fp32 on " + ", ".join(
              f"{a:.2%} with {k} int8 kernels" for k, a in agreement.items()))
    return {f"val_int8_label_agreement_{k}_kernels": a for k, a in agreement.items()}


def _agreement(a: list[str], b: list[str]) -> float:
    """The fraction of positions where two label lists agree."""
    return sum(x == y for x, y in zip(a, b)) / len(a)
