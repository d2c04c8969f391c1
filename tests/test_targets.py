"""int8 targets: a bundle's int8 graph is built for the CPUs it will meet, the runtime knows the
host it runs on, and the kernel references tell from this host what another one computes."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from conftest import ROOT, SMS_FILE, assert_clean_failure, spamkit_cli

from spamkit.export.bundle import ExportConfig, export_bundle
from spamkit.export.kernel_reference import (
    int8_weights,
    pairs_can_saturate,
    pairs_fit_int16,
    reference_graph,
    reference_logits,
)
from spamkit.export.onnx_graph import save_graph
from spamkit.export.quantize import MS_DOMAIN, quantize_weights
from spamkit.export.targets import PAIR_SAFE, Scheme
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import read_manifest
from spamkit.runtime.isa import (
    ARM64,
    CPUINFO,
    EXACT,
    PAIRS16,
    X86,
    X86_AVX2,
    X86_VNNI,
    classify_host,
    host_isa,
    isa_facts,
    target_risk,
)

pytestmark = pytest.mark.slow  # `make test-slow`

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text(encoding="utf-8").splitlines()]
# This host's own x86 flags with every VNNI flag taken out: the same CPU, as an AVX2-only one.
CPUINFO_TEXT = CPUINFO.read_text() if CPUINFO.is_file() else ""
HOST_FLAGS = next((line for line in CPUINFO_TEXT.splitlines() if line.startswith("flags")),
                  "flags:")
AVX2_ONLY = " ".join(w for w in HOST_FLAGS.split()
                     if w not in ("avx512_vnni", "avx_vnni", "amx_int8")) + " avx2"


@pytest.fixture(scope="module")
def target_bundles(tiny_checkpoint, tmp_path_factory) -> dict:
    """The tiny checkpoint exported for each explicit target, with its fp32 graph kept."""
    root = tmp_path_factory.mktemp("targets")
    bundles = {}
    for target in (X86_VNNI, X86_AVX2, ARM64):
        bundles[target] = root / target
        export_bundle(tiny_checkpoint, bundles[target],
                      ExportConfig(int8=True, keep_fp32=True, target=target))
    return bundles


def test_host_classes_from_cpuinfo():
    assert classify_host("x86_64", "flags\t: fpu sse2 ssse3 avx2 avx512bw avx512_vnni\n").name \
        == X86_VNNI
    assert classify_host("x86_64", "flags\t: fpu avx2 avx_vnni\n").name == X86_VNNI
    assert classify_host("x86_64", "flags\t: fpu avx2 amx_int8\n").name == X86_VNNI
    avx2 = classify_host("x86_64", "flags\t: fpu sse2 ssse3 avx2 avx512bw\n")
    assert (avx2.name, avx2.kernel) == (X86_AVX2, PAIRS16)
    assert classify_host("x86_64", "flags\t: fpu sse2 ssse3\n").kernel == PAIRS16
    assert classify_host("x86_64", "").name == X86
    arm = classify_host("aarch64", "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n")
    assert (arm.name, arm.kernel, arm.features) == (ARM64, EXACT, ("asimd", "asimddp", "i8mm"))
    assert classify_host("arm64", "").name == ARM64  # macOS: no /proc/cpuinfo


def test_eight_bit_graphs_are_flagged_only_where_products_saturate():
    avx2 = classify_host("x86_64", f"{AVX2_ONLY}\n")
    assert avx2.name == X86_AVX2
    vnni = classify_host("x86_64", "flags\t: avx2 avx512_vnni\n")
    arm = classify_host("aarch64", "Features\t: asimd asimddp\n")
    for target in (X86_VNNI, ARM64):
        risk = target_risk(target, avx2)
        assert risk is not None and "\n" not in risk and "--target portable" in risk
        assert target_risk(target, vnni) is None and target_risk(target, arm) is None
    for target in (X86_AVX2, "portable"):
        assert all(target_risk(target, host) is None for host in (avx2, vnni, arm))


def test_manifest_records_target_and_the_isa_export_checked_on(tiny_bundle, target_bundles):
    assert read_manifest(tiny_bundle).int8_target == "portable"  # the default
    for target, bundle in target_bundles.items():
        manifest = read_manifest(bundle)
        assert manifest.format_version == 4
        assert (manifest.int8_target, manifest.checked_on_isa) == (target, host_isa().name)
    # Each target's labels were checked on the kernels of every CPU it is meant for.
    v = read_manifest(tiny_bundle).verification
    assert v["val_int8_label_agreement_exact_kernels"] >= 0.99
    assert v["val_int8_label_agreement_pairs16_kernels"] >= 0.99
    assert "val_int8_label_agreement_pairs16_kernels" in read_manifest(
        target_bundles[X86_AVX2]).verification


def test_no_weight_pair_can_saturate_where_pairs_are_summed(tiny_bundle, target_bundles):
    for bundle in (tiny_bundle, target_bundles[X86_AVX2]):  # portable, x86-avx2
        assert not pairs_can_saturate(bundle / "model.int8.onnx")
        weights = int8_weights(bundle / "model.int8.onnx")
        assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) > 64
    for target in (X86_VNNI, ARM64):  # plain 8-bit: some pairs could saturate on AVX2
        assert pairs_can_saturate(target_bundles[target] / "model.int8.onnx")


def test_pair_safe_weights_are_nearer_than_seven_bit_ones():
    """On GPT-2-like weights, limiting same-sign pairs beats halving every column's range."""
    # Activations are >= 0: only two weights of one sign add up.
    assert pairs_fit_int16(np.array([[127], [-127]], np.int8))
    assert not pairs_fit_int16(np.array([[127], [2]], np.int8))
    assert not pairs_fit_int16(np.array([[-100], [-29]], np.int8))
    w = np.random.default_rng(0).normal(0, 0.02, (768, 512)).astype(np.float32)
    w[:, ::7] *= 3  # some columns with a wider spread
    q, scale = quantize_weights(w, PAIR_SAFE)
    assert q.dtype == np.int8 and pairs_fit_int16(q)
    seven, seven_scale = quantize_weights(w, Scheme(weight_max=64))
    assert pairs_fit_int16(seven)
    eight, eight_scale = quantize_weights(w, Scheme())
    assert not pairs_fit_int16(eight)
    error = {name: float(np.square(q * s - w).sum()) for name, q, s in (
        ("pair-safe", q, scale), ("7-bit", seven, seven_scale), ("8-bit", eight, eight_scale))}
    assert error["8-bit"] < error["pair-safe"] < 0.6 * error["7-bit"], error


@pytest.mark.parametrize("target", ["portable", X86_VNNI, X86_AVX2, ARM64])
def test_reference_for_this_host_reproduces_its_kernels(tiny_bundle, target_bundles, target,
                                                        tmp_path):
    """The reference for this host's kernel gives ONNX Runtime's own int8 logits here, so a
    reference for another host's kernel stands for that host."""
    bundle = tiny_bundle if target == "portable" else target_bundles[target]
    clf = Classifier.load(bundle, precision="int8", threads=1)
    texts = MESSAGES[:40]
    ids = clf.tokenizer.encode_batch(texts)
    graph = tmp_path / "reference.onnx"
    reference_graph(bundle / "model.int8.onnx", graph, host_isa().kernel)
    np.testing.assert_allclose(reference_logits(graph, ids, clf.tokenizer.pad_id),
                               clf.logits(texts), atol=1e-5, rtol=0)


def test_pair_sums_move_eight_bit_logits_only(tiny_bundle, target_bundles, tmp_path):
    ids = Classifier.load(tiny_bundle, precision="int8").tokenizer.encode_batch(MESSAGES[:40])
    moved = {}
    for name, bundle in (("8-bit", target_bundles[X86_VNNI]), ("pair-safe", tiny_bundle)):
        logits = []
        for kernel in (EXACT, PAIRS16):
            reference_graph(bundle / "model.int8.onnx", tmp_path / f"{kernel}.onnx", kernel)
            logits.append(reference_logits(tmp_path / f"{kernel}.onnx", ids, 50256))
        moved[name] = float(np.abs(logits[0] - logits[1]).max())
    assert moved["8-bit"] > 1e-4 and moved["pair-safe"] == 0.0


def _probe(tmp_path, a: np.ndarray, w: np.ndarray):
    """One MatMulIntegerToFloat: uint8 activations (zero point 0, scale 1e-3) times int8
    weights (scale 1e-3)."""
    graph = ir.Graph([], [], nodes=[], opset_imports={"": 18, MS_DOMAIN: 1}, name="probe")
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.UINT8), shape=ir.Shape(a.shape))
    graph.inputs.append(x)
    inits = {}
    for name, array in (("w", w), ("sa", np.array(1e-3, np.float32)),
                        ("sw", np.full(w.shape[1], 1e-3, np.float32)),
                        ("za", np.array(0, np.uint8))):
        inits[name] = ir.Value(name=name, const_value=ir.tensor(array, name=name))
        graph.register_initializer(inits[name])
    node = ir.Node(MS_DOMAIN, "MatMulIntegerToFloat",
                   [x, inits["w"], inits["sa"], inits["sw"], inits["za"]], name="mm")
    graph.append(node)
    node.outputs[0].name = "y"
    graph.outputs.append(node.outputs[0])
    save_graph(ir.Model(graph, ir_version=10), tmp_path / "probe.onnx")
    return tmp_path / "probe.onnx"


def test_pair_saturation_probe(tmp_path):
    """What ONNX Runtime documents for u8s8 without VNNI: 255 * 127 + 255 * 127 passes int16."""
    rng = np.random.default_rng(0)
    a = np.full((1, 64), 255, np.uint8)
    w = rng.integers(90, 128, size=(64, 4)).astype(np.int8)
    exact = (a.astype(np.int64) @ w.astype(np.int64)) * 1e-6
    pairs = a.astype(np.int64).reshape(1, 32, 2, 1) * w.astype(np.int64).reshape(32, 2, 4)
    saturated = np.clip(pairs.sum(axis=2), -32768, 32767).sum(axis=1) * 1e-6
    path = _probe(tmp_path, a, w)
    got = {}
    for kernel in (EXACT, PAIRS16):
        reference_graph(path, tmp_path / f"{kernel}.onnx", kernel)
        session = ort.InferenceSession(str(tmp_path / f"{kernel}.onnx"),
                                       providers=["CPUExecutionProvider"])
        got[kernel] = session.run(None, {"x": a})[0]
    np.testing.assert_allclose(got[EXACT], exact, rtol=1e-6)
    np.testing.assert_allclose(got[PAIRS16], saturated, rtol=1e-6)
    assert (saturated < exact - 0.1).all()
    # And this host's own kernel computes what its reference says.
    host = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": a})
    np.testing.assert_allclose(host[0], got[host_isa().kernel], rtol=1e-6)


def test_bench_and_eval_name_the_host_isa_and_the_graph_target(target_bundles):
    bundle = target_bundles[X86_VNNI]
    data = ("--data", SMS_FILE)
    bench = spamkit_cli("bench", bundle, "--messages", "20", "--throughput-messages", "40",
                        "--warmup", "2", "--threads", "1", *data)
    assert bench.returncode == 0, bench.stderr
    isa_line = next(line for line in bench.stdout.splitlines() if line.strip().startswith("ISA"))
    assert host_isa().name in isa_line and f"graph built for {X86_VNNI}" in isa_line
    result = spamkit_cli("eval", bundle, "--json", *data)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["graph_target"] == X86_VNNI and report["host_isa"] == host_isa().describe()
    # The one-line warning comes exactly where this graph can lose accuracy: x86 without VNNI.
    risk = target_risk(X86_VNNI, host_isa())
    warnings = [line for line in result.stderr.splitlines() if "built for x86-vnni" in line]
    assert warnings == ([] if risk is None else [f"spamkit: {risk}"])


def test_target_auto_is_this_hosts_kind_and_a_bad_target_is_one_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    result = spamkit_cli("export", tiny_checkpoint, "--out", out, "--int8", "--target", "auto",
                         "--data", SMS_FILE)
    assert result.returncode == 0, result.stderr
    want = {X86_VNNI: X86_VNNI, ARM64: ARM64, X86_AVX2: X86_AVX2, X86: X86_AVX2}
    assert read_manifest(out).int8_target == want.get(host_isa().name, "portable")
    bad = spamkit_cli("export", tiny_checkpoint, "--out", tmp_path / "b2", "--int8",
                      "--target", "x86-avx3", "--data", SMS_FILE)
    assert_clean_failure(bad, "--target", "x86-avx3", out=tmp_path / "b2")
    no_int8 = spamkit_cli("export", tiny_checkpoint, "--out", tmp_path / "b3",
                          "--target", "arm64", "--data", SMS_FILE)
    assert_clean_failure(no_int8, "--int8", out=tmp_path / "b3")


def test_a_bundle_before_format_4_is_taken_as_eight_bit(tiny_bundle, tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    del data["int8_target"], data["checked_on_isa"], data["text_graphs"], data["ort_graphs"]
    path.write_text(json.dumps({**data, "format_version": 3}))
    clf = Classifier.load(bundle)
    assert clf.manifest.int8_target is None
    facts = isa_facts(clf.precision, clf.manifest.int8_target)
    assert facts["graph_target"] == "x86-vnni (8-bit; bundle before format 4)"
    assert ("target_risk" in facts) == (host_isa().kernel == PAIRS16)


def test_targets_benchmark_tables_each_target_on_this_host_and_the_avx2_reference(
        tiny_checkpoint, tiny_bundle, target_bundles, tmp_path):
    """benchmarks/targets.py on bundles already exported (it exports only what is missing)."""
    out = tmp_path / "targets"
    out.mkdir()
    (out / "portable").symlink_to(tiny_bundle)
    (out / X86_VNNI).symlink_to(target_bundles[X86_VNNI])
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "targets.py", tiny_checkpoint, "--out", out,
         "--data", SMS_FILE, "--targets", X86_VNNI, "portable", "--limit", "40",
         "--kernels", PAIRS16], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    head, _, _, _, *rows = (out / "targets.md").read_text().splitlines()
    assert head.endswith(f"measured on {host_isa().describe()}")
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    agreement = {(target, route): agree for target, route, agree, _ in cells}
    here = f"this host ({host_isa().name})"
    assert list(agreement) == [(X86_VNNI, here), (X86_VNNI, "pairs16 kernels"),
                               ("portable", here), ("portable", "pairs16 kernels")]
    # Pair-safe weights: every kernel computes the same products, so the same labels.
    assert agreement["portable", here] == agreement["portable", "pairs16 kernels"]
    if host_isa().kernel == PAIRS16:  # here the host's own kernels are the ones referenced
        assert agreement[X86_VNNI, here] == agreement[X86_VNNI, "pairs16 kernels"]
    figures = json.loads((out / "targets.json").read_text())
    assert figures["host_isa"] == host_isa().describe()
    assert [r["messages"] for r in figures["results"]] == [40, 40]
