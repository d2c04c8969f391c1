"""`spamkit export`: checkpoint -> verified, optionally int8, self-contained bundle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.checkpoint import load_checkpoint
from spamkit.data import Splits, load_splits
from spamkit.errors import SpamkitError
from spamkit.export.onnx_graph import OPSET, export_onnx
from spamkit.export.quantize import quantize_int8
from spamkit.export.verify import max_logit_difference
from spamkit.runtime.bundle import (
    GRAPH_FILES,
    TOKENIZER_FILE,
    Manifest,
    with_checksums,
    write_manifest,
)
from spamkit.runtime.classifier import Classifier, make_session
from spamkit.tokenizer import gpt2_tokenizer

FP32_TOLERANCE = 1e-4
VERIFY_MESSAGES = 64
CALIBRATION_MESSAGES = 256


@dataclass(frozen=True)
class ExportConfig:
    int8: bool = False
    keep_fp32: bool = False  # with int8: also ship the fp32 graph (4x the size)
    data: str | None = None  # where to find the validation messages (default: as trained)


def export_bundle(checkpoint: str | Path, out: str | Path, cfg: ExportConfig) -> Manifest:
    ckpt = load_checkpoint(checkpoint)
    if ckpt.training.get("pad_to"):
        raise SpamkitError(
            f"{checkpoint} was trained with --pad-to (the book's fixed-length padding, kept for "
            "its experiments); the runtime reads the last real token, so retrain without "
            "--pad-to to export"
        )
    model_cfg = ckpt.config
    tokenizer = gpt2_tokenizer(model_cfg.context_length)
    data_cfg = replace(ckpt.data, path=cfg.data) if cfg.data else ckpt.data
    splits = load_splits(data_cfg)
    sample = _spread(splits.val.texts, VERIFY_MESSAGES)

    with atomic_dir(out) as tmp:
        fp32_path = tmp / GRAPH_FILES["fp32"]
        export_onnx(ckpt.model, fp32_path)
        diff = max_logit_difference(ckpt.model, fp32_path, tokenizer, sample)
        print(f"fp32 graph vs PyTorch on {len(sample)} validation messages: max |logit diff| {diff:.2e}")
        if diff > FP32_TOLERANCE:
            raise SpamkitError(
                f"exported graph disagrees with PyTorch: max |logit diff| {diff:.2e} > "
                f"{FP32_TOLERANCE:g}; no bundle written"
            )
        tokenizer.save(tmp / TOKENIZER_FILE)
        graphs = {"fp32": GRAPH_FILES["fp32"]}
        if cfg.int8:
            # Calibrate on training messages: validation and test stay unseen for the checks.
            calibration = tokenizer.encode_batch(_spread(splits.train.texts, CALIBRATION_MESSAGES))
            quantize_int8(fp32_path, tmp / GRAPH_FILES["int8"], calibration, tokenizer.pad_id)
            graphs["int8"] = GRAPH_FILES["int8"]
        manifest = Manifest(
            labels=ckpt.labels,
            context_length=model_cfg.context_length,
            pad_id=tokenizer.pad_id,
            token=model_cfg.token,
            preset=ckpt.preset,
            opset=OPSET,
            graphs=graphs,
            spamkit_version=__version__,
            data={k: v for k, v in asdict(ckpt.data).items() if k != "path"},
            verification={"fp32_max_abs_logit_diff_vs_torch": diff,
                          "verified_on_messages": len(sample)},
        )
        if cfg.int8:
            report = _compare_int8(tmp, tokenizer, manifest, splits)
            manifest = replace(manifest, verification={**manifest.verification, **report})
            if not cfg.keep_fp32:
                fp32_path.unlink()
                manifest = replace(manifest, graphs={"int8": GRAPH_FILES["int8"]})
        # Last: without its manifest the directory is not a bundle to the runtime.
        manifest = with_checksums(tmp, manifest)
        write_manifest(tmp, manifest)
    return manifest


def _spread(texts: list[str], n: int) -> list[str]:
    """`n` messages taken at even steps through the (shuffled) split."""
    return texts[:: max(len(texts) // n, 1)][:n]


def _compare_int8(bundle: Path, tokenizer, manifest: Manifest, splits: Splits) -> dict:
    """Label agreement and accuracy of the int8 graph against fp32 on the validation and test
    splits, as an app would see them through the runtime."""
    report = {}
    runners = {
        p: Classifier(make_session(bundle / manifest.graphs[p], ["CPUExecutionProvider"]),
                      tokenizer, manifest, "cpu", p)
        for p in ("fp32", "int8")
    }
    for name, part in (("val", splits.val), ("test", splits.test)):
        truth = [splits.labels[y] for y in part.labels]
        preds = {p: clf.predict(part.texts) for p, clf in runners.items()}
        acc = {p: sum(a == b for a, b in zip(preds[p], truth)) / len(truth) for p in preds}
        agree = sum(a == b for a, b in zip(preds["fp32"], preds["int8"])) / len(truth)
        print(
            f"{name} split ({len(truth)} messages): accuracy fp32 {acc['fp32']:.2%}, "
            f"int8 {acc['int8']:.2%}; int8 labels agree with fp32 on {agree:.2%}"
        )
        report |= {f"{name}_accuracy_fp32": acc["fp32"], f"{name}_accuracy_int8": acc["int8"],
                   f"{name}_int8_label_agreement": agree}
    return report
