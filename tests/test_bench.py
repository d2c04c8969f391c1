"""`spamkit bench` as a user runs it on an app host: the real CLI in a fresh process, a real
bundle, real SMS messages, and a Python where torch cannot be imported."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT, SMS_FILE, assert_clean_failure, spamkit_cli

from spamkit.data import read_messages
from spamkit.errors import SpamkitError
from spamkit.jobs.bench import BenchConfig
from spamkit.jobs.measure import cpu_model
from spamkit.runtime import Classifier
from spamkit.runtime.isa import host_isa
from spamkit.tokenizer import gpt2_bpe_files, gpt2_tokenizer

pytestmark = pytest.mark.slow  # `make test-slow`

# Small runs: the figures of the tiny model mean nothing; their consistency does.
SMALL = ("--messages", "20", "--throughput-messages", "150", "--warmup", "3")


@pytest.fixture
def no_torch(tmp_path) -> dict:
    """An environment in which `import torch` fails, in the CLI and in every process it starts."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked on this app host')\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(blocker),
                                                         os.environ.get("PYTHONPATH")]))}


def seconds_to_import_the_runtime(env: dict) -> float:
    """Wall time of a fresh `python -c "import spamkit.runtime"`, timed here."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import spamkit.runtime"], check=True, timeout=120,
                   env={**os.environ, **env})
    return time.monotonic() - start


def msgs_per_s_here(bundle, threads: int, n: int) -> float:
    """Classifier.logits on the first n messages in this process: the best of three calls."""
    clf = Classifier.load(bundle, threads=threads)
    texts = read_messages(SMS_FILE)[0][:n]
    clf.logits(texts)  # warm
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        clf.logits(texts)
        best = min(best, time.perf_counter() - start)
    return n / best


def test_bench_reports_consistent_figures_as_json_without_torch(tiny_bundle, no_torch):
    start = time.monotonic()
    result = spamkit_cli("bench", tiny_bundle, "--data", SMS_FILE, "--json", *SMALL, env=no_torch)
    wall = time.monotonic() - start

    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["bundle"] == str(tiny_bundle) and r["data"] == str(SMS_FILE)
    assert (r["precision"], r["device"], r["graph"]) == ("int8", "cpu", "model.int8.onnx")
    graph = [tiny_bundle / f for f in ("model.int8.onnx", "model.int8.onnx.data")]
    assert r["graph_mb"] == pytest.approx(sum(f.stat().st_size for f in graph) / 1e6)
    # Threads default to the CPUs this process may use.
    assert (r["threads"], r["batch_size"]) == (r["machine"]["usable_cpus"], 32)
    # Start-up is timed from the moment the process is started: its import part holds the
    # interpreter's start and the runtime's imports, which a fresh process takes here too (a
    # third of it allows for a busy machine), and it all fits in the command's wall time.
    assert min(r["import_s"], r["load_s"], r["first_answer_s"]) > 0
    assert r["import_s"] > seconds_to_import_the_runtime(no_torch) / 3
    assert r["startup_s"] + r["throughput"]["seconds"] < wall
    lat = r["latency_ms"]
    assert (lat["messages"], lat["warmup"]) == (20, 3)
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["max"]
    thr = r["throughput"]
    assert thr["messages"] == 150
    # The same call timed in this process: within a factor of 10 either way on a shared
    # machine, which a wrong count or unit (ms for s) would not be.
    here = msgs_per_s_here(tiny_bundle, r["threads"], 150)
    assert here / 10 < thr["msgs_per_s"] < here * 10, (thr["msgs_per_s"], here)
    assert 0 < r["rss_after_first_answer_mb"] <= r["peak_rss_mb"]
    # The first 150 SMS messages, as GPT-2 tokens.
    tokens = r["tokens_per_message"]
    assert 1 < tokens["median"] <= tokens["mean"] < tokens["max"] <= 256
    assert r["providers"] == ["CPUExecutionProvider"] and r["onnxruntime"]
    machine = r["machine"]
    assert machine["cpu"] and machine["usable_cpus"] >= 1 and machine["spamkit"]


def test_bench_prints_a_table_for_people(tiny_bundle):
    result = spamkit_cli("bench", tiny_bundle, "--data", SMS_FILE, "--precision", "fp32",
                         "--threads", "1", *SMALL)

    assert result.returncode == 0, result.stderr
    head, *rows = result.stdout.splitlines()
    assert head.startswith(f"{tiny_bundle}: fp32 graph model.onnx (")
    assert "on cpu, threads 1, batch size 32" in head
    names = [row.split()[0] for row in rows]
    assert names == ["ISA", "start-up", "batch-1", "throughput", "peak", "messages", "machine",
                     "software"]
    text = "\n".join(rows)
    for words in ("s from process start to first answer", "p50", "p90", "over 20 messages",
                  "msgs/s: 150 messages", "MB", "ONNX Runtime"):
        assert words in text


@pytest.mark.parametrize("args, words", [
    (("--precision", "fp16"), ["no fp16 graph", "fp32, int8"]),  # found by the measuring process
    (("--messages", "0"), ["--messages"]),
    (("--threads", "0"), ["--threads"]),
    (("--device", "tpu"), ["'--device'", "'tpu' is not one of cpu, cuda, auto"]),
    # Never a silent CPU figure for a GPU request (tests/test_gpu.py measures a real GPU).
    pytest.param(("--device", "cuda"), ["device='cuda' needs ONNX Runtime's CUDA provider"],
                 marks=pytest.mark.skipif(
                     "CUDAExecutionProvider" in ort.get_available_providers(),
                     reason="this machine's ONNX Runtime has CUDA")),
])
def test_bad_options_fail_with_one_line(tiny_bundle, args, words):
    result = spamkit_cli("bench", tiny_bundle, "--data", SMS_FILE, *args)
    assert_clean_failure(result, *words)


@pytest.mark.parametrize("options, words", [
    ({"threads": 0}, "threads must be an integer from 1"),
    ({"threads": 1, "precision": "int4"}, "precision must be one of"),
    ({"threads": 1, "device": "gpu"}, "device must be one of"),
    ({"threads": 1, "batch_size": 0}, "batch_size must be an integer of at least 1"),
])
def test_a_bench_config_refuses_what_the_measuring_process_would(tmp_path, options, words):
    """Through the API too, before a process is started for it (or the bundle is read)."""
    with pytest.raises(SpamkitError, match=words):
        BenchConfig(str(tmp_path / "bundle"), **options)


def test_a_missing_bundle_is_named_before_anything_runs(tmp_path):
    result = spamkit_cli("bench", tmp_path / "nope")
    assert_clean_failure(result, "bundle not found", "nope")


def test_compare_runs_the_book_and_spamkit_routes_on_the_same_weights(tmp_path):
    # The optimum routes need their own venv (make compare builds it); the rest runs here.
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "compare.py", "--preset", "tiny", "--rounds", "1",
         "--routes", "book", "spamkit-fp32", "spamkit-int8", "--messages", "8",
         "--throughput-messages", "40", "--work", tmp_path, "--data", SMS_FILE, "--json"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert set(r["medians"]) == {"book", "spamkit-fp32", "spamkit-int8"}
    # The one input: a Hugging Face folder of the preset's shape, made from the seed.
    assert r["header"]["hf_dir"] == str(tmp_path / "tiny-seed123" / "hf")
    config = json.loads((tmp_path / "tiny-seed123" / "hf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2ForSequenceClassification"]
    assert r["header"]["preset"] == "tiny" and list(tmp_path.glob("*/checkpoint")) == []
    # Every figure is for this host's ISA and spamkit's default int8 target: both are recorded.
    assert (r["header"]["isa"], r["header"]["int8_target"]) == (host_isa().describe(), "portable")
    for route in r["medians"].values():
        assert route["p50 ms"] > 0 and route["msgs/s"] > 0 and route["peak RSS MB"] > 0
    # The two spamkit graphs come from one export of the same weights and agree.
    assert r["checks"]["spamkit-int8 vs spamkit-fp32"]["label_agreement"] >= 0.95
    assert r["checks"]["spamkit-int8 alone vs in the list"]["label_agreement"] == 1.0


def test_compare_of_spamkit_routes_alone_saves_and_reports_them(tmp_path):
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "compare.py", "--preset", "tiny", "--rounds", "1",
         "--routes", "spamkit-int8", "--messages", "8", "--throughput-messages", "40",
         "--work", tmp_path, "--data", SMS_FILE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "spamkit-int8" in result.stdout and "times better than each peer" not in result.stdout
    (saved,) = tmp_path.glob("results-tiny-*.json")
    assert set(json.loads(saved.read_text())["medians"]) == {"spamkit-int8"}


def test_compare_asks_for_the_peer_venv_only_when_a_peer_route_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "compare.py", "--routes", "optimum-int8",
         "--work", tmp_path], capture_output=True, text=True)
    assert result.returncode == 2 and "--peer-python" in result.stderr
    assert list(tmp_path.iterdir()) == []


def compare(*args, work: Path) -> subprocess.CompletedProcess:
    """benchmarks/compare.py's book and spamkit routes, briefly (the optimum routes need the venv
    `make compare` builds)."""
    return subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "compare.py", "--rounds", "1", "--routes", "book",
         "spamkit-fp32", "spamkit-int8", "--messages", "8", "--throughput-messages", "40",
         "--work", work, "--data", SMS_FILE, *args], capture_output=True, text=True, timeout=300)


def save_a_users_classifier(folder: Path, labels: list[str], seed: int = 5) -> None:
    """What a user's transformers run leaves: a small GPT2ForSequenceClassification, and GPT-2's
    vocab.json and merges.txt beside it (no tokenizer_config.json: no pad token in it)."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_positions=128, n_layer=3, n_head=4, n_embd=64,
                                     pad_token_id=50256, id2label=dict(enumerate(labels)),
                                     label2id={x: i for i, x in enumerate(labels)})
    transformers.GPT2ForSequenceClassification(config).save_pretrained(folder)
    vocab, merges = gpt2_bpe_files()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def transformers_logits(folder: Path, ids: list[list[int]], pad_token_id: int | None):
    """transformers' own logits of each message alone; with pad_token_id None it reads the last
    position, as the book does."""
    import torch
    import transformers

    model = transformers.GPT2ForSequenceClassification.from_pretrained(folder).eval()
    model.config.pad_token_id = pad_token_id
    with torch.no_grad():
        return np.stack([model(input_ids=torch.tensor([x])).logits[0].numpy() for x in ids])


def test_compare_runs_every_route_from_a_users_hugging_face_folder(tmp_path):
    """--hf-dir: the folder save_pretrained wrote is the only input; spamkit's routes are
    `spamkit export` of it, the book's model is read from it."""
    labels, folder = ["ham", "spam", "promo"], tmp_path / "my-classifier"
    save_a_users_classifier(folder, labels)
    result = compare("--hf-dir", folder, "--json", work=tmp_path / "work")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["header"]["hf_dir"] == str(folder)
    assert r["header"]["labels"] == labels and r["header"]["preset"] == "custom"
    assert f"spamkit export {folder}" in result.stderr
    logits = tmp_path / "work" / "logits"
    ids = gpt2_tokenizer(128).encode_batch(read_messages(SMS_FILE)[0][:8])
    np.testing.assert_allclose(np.load(logits / "spamkit-fp32.npz")["single"],
                               transformers_logits(folder, ids, 50256), atol=1e-4, rtol=0)
    # The book pads each message to 120 tokens and reads the class at the last of them.
    padded = [x + [50256] * (120 - len(x)) for x in ids]
    np.testing.assert_allclose(np.load(logits / "book.npz")["single"],
                               transformers_logits(folder, padded, None), atol=1e-4, rtol=0)
    assert list(tmp_path.glob("work/results-my-classifier-*.json"))

    # Saved again with other weights: exported again, not measured from the cached bundle.
    save_a_users_classifier(folder, labels, seed=6)
    again = compare("--hf-dir", folder, "--routes", "spamkit-fp32", work=tmp_path / "work")
    assert again.returncode == 0, again.stderr
    np.testing.assert_allclose(np.load(logits / "spamkit-fp32.npz")["single"],
                               transformers_logits(folder, ids, 50256), atol=1e-4, rtol=0)


def test_compare_refuses_an_hf_dir_that_save_pretrained_did_not_write(tmp_path):
    (tmp_path / "weights").mkdir()
    result = compare("--hf-dir", tmp_path / "weights", work=tmp_path / "work")
    assert result.returncode == 2 and "--hf-dir" in result.stderr
    assert "config.json" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "work").exists()


def test_compare_stops_on_a_folder_spamkit_export_refuses(tmp_path):
    """A language model has no classification head: export's one line, then compare's."""
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "config.json").write_text(json.dumps(
        {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    result = compare("--hf-dir", tmp_path / "lm", work=tmp_path / "work")
    assert result.returncode == 1
    assert "a language model with no classification head" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("compare.py: error: ")
    assert list(tmp_path.glob("work/*/bundle-*")) == []


def test_matmul_floor_reports_each_precision_at_each_length_on_this_isa():
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "matmul_floor.py", "--tokens", "3", "7",
         "--runs", "4"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    head, *lines = result.stdout.splitlines()
    isa = host_isa().name  # the kernels, and so the figures, differ by ISA: each line names it
    assert head.startswith(f"host {cpu_model()}, {host_isa().describe()}")
    assert [line.split(" 48 matmuls ")[0] for line in lines] == [
        f"{isa} {p} {n} tokens:" for p in ("u8s8", "u8u8", "nbits8", "nbits4", "fp32")
        for n in (3, 7)]
    assert all(float(line.split("48 matmuls ")[1].split(" ms")[0]) > 0 for line in lines)


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind: apt-get install valgrind (Debian package valgrind)")
def test_avx2_instructions_counts_graphs_on_avx2_kernels_from_any_x86_host(tiny_bundle, tmp_path):
    """benchmarks/avx2_instructions.py, with the tiny int8 graph in each route's place: it exits
    0 only where valgrind's CPU ran AVX2's u8s8 kernel (its probe's pair sums clipped)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "bundle-portable").symlink_to(tiny_bundle)
    for route in ("optimum-int8", "optimum-int8-avx2"):
        (work / route).mkdir()
        (work / route / "model_quantized.onnx").symlink_to(tiny_bundle / "model.int8.onnx")
        for data in tiny_bundle.glob("model.int8.onnx.data"):
            (work / route / data.name).symlink_to(data)
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "avx2_instructions.py", "--work", work,
         "--tokens", "7", "--runs", "4"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    graphs, matmuls = result.stdout.split("\n\n")
    rows = [line.strip("|").split("|") for line in graphs.splitlines()
            if line.startswith("| ") and "graph" not in line]
    assert [row[0].strip() for row in rows] == ["spamkit-int8", "optimum-int8", "optimum-int8-avx2"]
    for _, total, in_kernel, _, ratio in rows:
        assert 0 < float(in_kernel.split()[0]) < float(total)
        assert 0.9 < float(ratio) < 1.1  # the same graph three times: the same work
    # ONNX Runtime's matmuls side by side on AVX2: u8u8 is the slower kernel (vpmaddwd), fp32
    # does more still; each is counted against u8s8.
    ratios = {row[0].strip(): float(row[2]) for row in
              (line.strip("|").split("|") for line in matmuls.splitlines()[3:])}
    assert list(ratios) == ["u8s8", "u8u8", "nbits8", "nbits4", "fp32"]
    assert ratios["u8s8"] == 1.0 and ratios["u8u8"] > 1.1 and ratios["fp32"] > ratios["u8u8"]
