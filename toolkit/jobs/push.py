"""`spamkit push`: publish a bundle to a Hugging Face Hub model repository with a model card, so
that `Classifier.load("hf://org/name")` and `spamkit classify hf://org/name` load it anywhere.

What is published is exactly the bundle's manifest.json, the files it lists (each checked
against its sha256 first: a damaged bundle is never published; each named by a plain relative
path, as `hf://` loading requires) and README.md, the model card: labels, the figures the export
measured (every string from the manifest in a code span: shown, never rendered), the bundle's
digest and how to use it. A bundle that lists a README.md of its own is refused: uploaded, it
would replace the card; left out, the bundle on the Hub would lack a file. One commit holds
them all. `--dry-run DIR` writes those same files to DIR instead of uploading.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from spamkit import __version__
from spamkit.atomic import atomic_dir
from spamkit.errors import SpamkitError
from spamkit.extras import require
from spamkit.runtime.bundle import MANIFEST_FILE, Manifest, first_line, open_manifest, verify_files
from spamkit.runtime.hub import HUB_SCHEME, check_plain_names, repo_id_problem

CARD_FILE = "README.md"
EXAMPLES = ["WINNER!! Claim your prize now", "see you at 6?"]


@dataclass(frozen=True)
class PushConfig:
    repo_id: str  # org/name
    private: bool = False  # when the push creates the repository
    message: str | None = None  # the commit message

    def __post_init__(self) -> None:
        problem = repo_id_problem(self.repo_id)  # before the Hub is asked (it would say "log in")
        if problem:
            raise SpamkitError(f"{self.repo_id!r} is not a Hub repository id: {problem}")


def push_bundle(bundle: Path, cfg: PushConfig, dry_run: Path | None = None) -> str:
    """Publish `bundle` to `cfg.repo_id` with a model card, or write what would be published.

    Args:
        bundle: the local bundle, checked against its manifest's sha256s first.
        cfg: the repository (created if missing), whether private, the commit message.
        dry_run: a new folder to write the files to instead of pushing.

    Returns:
        The commit's URL, or the folder written.

    Raises:
        SpamkitError: a damaged bundle, huggingface_hub missing (MissingExtra), a `dry_run`
            that is not a new or empty folder, or a push the Hub refused (in one line).
    """
    if dry_run is None:  # before the bundle is read and hashed
        require("huggingface_hub", "spamkit push")
    files = plan_upload(bundle, cfg.repo_id)
    if dry_run is not None:
        write_plan(files, dry_run)
        return str(dry_run)
    return upload_plan(files, cfg)


def plan_upload(bundle: Path, repo_id: str) -> dict[str, Path | bytes]:
    """Path in the repository -> the bundle file, or the model card's bytes."""
    manifest, digest = open_manifest(bundle)
    check_plain_names(manifest, str(bundle / MANIFEST_FILE))  # as `hf://` loading would
    if CARD_FILE in manifest.files:  # not uploaded, hf:// would miss it; uploaded, no card
        raise SpamkitError(f"{bundle / MANIFEST_FILE} lists {CARD_FILE}, the model card that "
                           "push writes (a bundle spamkit export wrote never does); refused")
    verify_files(bundle, manifest, list(manifest.files))
    card = model_card(manifest, digest, repo_id).encode()
    return {CARD_FILE: card, MANIFEST_FILE: bundle / MANIFEST_FILE,
            **{name: bundle / name for name in manifest.files}}


def write_plan(files: dict[str, Path | bytes], out: Path) -> None:
    """The files as they would be uploaded, in a new or empty folder `out`."""
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise SpamkitError(f"--dry-run {out} exists and is not an empty directory: choose a new "
                           "or empty one")
    with atomic_dir(out) as tmp:
        for name, source in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                (tmp / name).write_bytes(source)
            else:
                shutil.copyfile(source, tmp / name)


def upload_plan(files: dict[str, Path | bytes], cfg: PushConfig) -> str:
    """One commit of `files` to the repository, created first if it does not exist."""
    from huggingface_hub import CommitOperationAdd, HfApi  # push_bundle has required it

    api = HfApi(library_name="spamkit", library_version=__version__)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source
                                     if isinstance(source, bytes) else str(source))
                  for name, source in files.items()]
    message = cfg.message or f"Upload spamkit bundle ({len(files) - 1} files and a model card)"
    try:
        api.create_repo(cfg.repo_id, private=cfg.private, exist_ok=True)
        commit = api.create_commit(cfg.repo_id, operations=operations, commit_message=message)
    except Exception as e:  # noqa: BLE001 - HTTP, token and connection errors of several kinds
        refused = getattr(getattr(e, "response", None), "status_code", None) in (401, 403)
        hint = " (log in with `hf auth login` or set HF_TOKEN)" if refused else ""
        raise SpamkitError(f"cannot push to {cfg.repo_id}: {first_line(e)}{hint}") from None
    return commit.commit_url


def model_card(m: Manifest, digest: str, repo_id: str) -> str:
    """README.md for the Hub: front matter the Hub reads, then what the bundle is, what its
    export checked, and how to load it."""
    front = {"library_name": "spamkit", "pipeline_tag": "text-classification",
             "tags": ["spamkit", "onnx", "gpt2", "text-classification"]}
    # JSON values are YAML too: no YAML writer needed.
    yaml = "\n".join(f"{key}: {json.dumps(value)}" for key, value in front.items())
    graphs = ", ".join(f"{_code(file)} ({p}, for {' and '.join(m.devices[p])})"
                       for p, file in m.graphs.items())
    lines = [
        f"---\n{yaml}\n---\n", f"# {repo_id}\n",
        (f"A spamkit bundle: a GPT-2-style text classifier (preset {_code(m.preset)}, "
         f"classifying from the {m.token} token of each message) exported to ONNX by spamkit "
         f"{_code(m.spamkit_version)}. It runs on ONNX Runtime, without PyTorch.\n"),
        f"- Labels: {', '.join(_code(label) for label in m.labels)}",
        f"- Graphs: {graphs}",
        f"- Context: {m.context_length} tokens of GPT-2's tokenizer",
        f"- Digest: `{digest}` (the sha256 of manifest.json, which holds every file's sha256)",
        *_threshold_lines(m), "",
        "## Checked at export\n",
        ("Figures `spamkit export` measured on ONNX Runtime before writing the bundle"
         + (f" (data split: {_settings(m.data)})" if m.data else "") + ":\n"),
        "| check | value |", "|---|---|",
        *(f"| {_cell(name)} | {_figure(value)} |" for name, value in m.verification.items()),
        "",
        "## How to use\n", _usage(repo_id, digest, m.labels),
    ]
    return "\n".join(lines)


def _threshold_lines(m: Manifest) -> list[str]:
    if m.threshold is None:
        return []
    return [(f"- Threshold: {_code(m.threshold['label'])} whenever its probability reaches "
             f"{m.threshold['value']:.4f} (set by `spamkit calibrate`)")]


def _settings(data: dict) -> str:
    return ", ".join(f"{_code(key)} {_code(str(value))}" for key, value in data.items())


def _figure(value: object) -> str:
    if isinstance(value, str):
        return _cell(value)
    return f"{value:.6g}" if isinstance(value, float) else str(value)  # int, bool or None


def _code(text: str) -> str:
    """`text` as a Markdown code span, which shows it as it is (HTML included): fenced by more
    backticks than it holds in a row, and spaced from a backtick or space at either end."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """`text` in a table cell: a code span whose '|' does not end the cell."""
    return _code(text).replace("|", "\\|")


def _usage(repo_id: str, digest: str, labels: list[str]) -> str:
    return "\n".join([
        "```bash",
        'pip install "spamkit[cpu,hub]"',
        f"spamkit classify {HUB_SCHEME}{repo_id} {' '.join(json.dumps(t) for t in EXAMPLES)}",
        "```", "",
        "```python",
        "from spamkit.runtime import Classifier",
        "",
        f'clf = Classifier.load("{HUB_SCHEME}{repo_id}", digest="{digest}")',
        f"clf.predict({json.dumps(EXAMPLES)})  # one of {labels} for each",
        "```", "",
        ("The bundle is downloaded into the Hugging Face cache once and checked like any bundle "
         "(every file against its sha256); with `digest=` any other bundle is refused. "
         "HF_HUB_OFFLINE=1 loads it from the cache alone."),
    ]) + "\n"
