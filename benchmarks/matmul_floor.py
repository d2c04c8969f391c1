"""ONNX Runtime's own time for the matmuls of one message through the GPT-2 124M shape.

Each of the four matmul shapes of a block runs alone, in a graph of its own (int8: the
QuantizeLinear + MatMulIntegerToFloat pair that spamkit's int8 graph uses; fp32: MatMul + Add),
with its weights hot in cache. Their sum over the 48 matmuls of a message (11 blocks at every
token; the last block's q/k/v projection at every token and the rest at one) is a floor for a
whole graph's latency in ONNX Runtime: attention, GELU, LayerNorm, the embeddings and weights
that do not stay in cache all come on top.

u8s8 is spamkit's int8 graph (int8 weights; `portable` and `x86-avx2` keep each pair of
neighbouring same-sign weights within 128, which is the same kernel at the same speed); u8u8
stores the weights as uint8 with a zero point of 128, the format ONNX Runtime suggests where
u8s8 saturates. nbits8 and nbits4 are ONNX Runtime's other int8 route, MatMulNBits: weights of
8 or 4 bits in blocks of 32 along K with a scale each, computed in int8 (accuracy_level 4: the
activations are quantized per block as it runs), the kernels its blockwise quantizer
(onnxruntime.quantization.matmul_nbits_quantizer) targets. Every line names the host's ISA: the
kernels differ by ISA (spamkit.runtime.isa).

    python benchmarks/matmul_floor.py --tokens 19 48
    tools/native_host.sh .venv/bin/python benchmarks/matmul_floor.py --tokens 19 48  # AVX2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from spamkit.jobs.measure import cpu_model
from spamkit.runtime.isa import host_isa

N_EMBD, N_LAYER = 768, 12
SHAPES = ((N_EMBD, 3 * N_EMBD), (N_EMBD, N_EMBD), (N_EMBD, 4 * N_EMBD), (4 * N_EMBD, N_EMBD))
PRECISIONS = ("u8s8", "u8u8", "nbits8", "nbits4", "fp32")
NBITS_BLOCK = 32
RNG = np.random.default_rng(0)


def int8_nodes(k: int, n: int, precision: str) -> tuple[list, dict]:
    """QuantizeLinear + MatMulIntegerToFloat, int8 (u8s8) or uint8 (u8u8) weights."""
    w = RNG.integers(-127, 128, (k, n)).astype(np.int8)
    inits = {"w": w, "x_scale": np.float32(0.02), "x_zero": np.uint8(128),
             "w_scale": RNG.random(n).astype(np.float32) * 1e-3, "b": np.zeros(n, np.float32)}
    if precision == "u8u8":
        inits["w"] = (w.astype(np.int16) + 128).astype(np.uint8)
        inits["w_zero"] = np.full(n, 128, np.uint8)
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
             helper.make_node("MatMulIntegerToFloat",
                              ["xq", "w", "x_scale", "w_scale", "x_zero",
                               "w_zero" if precision == "u8u8" else "", "b"],
                              ["y"], domain="com.microsoft")]
    return nodes, inits


def nbits_nodes(k: int, n: int, bits: int) -> tuple[list, dict]:
    """MatMulNBits: [n, blocks, packed bytes] weights (zero point 2^(bits-1)), int8 compute."""
    blocks = k // NBITS_BLOCK
    inits = {"w": RNG.integers(0, 256, (n, blocks, NBITS_BLOCK * bits // 8), dtype=np.uint8),
             "w_scale": RNG.random(n * blocks).astype(np.float32) * 1e-3,
             "b": np.zeros(n, np.float32)}
    node = helper.make_node("MatMulNBits", ["x", "w", "w_scale", "", "", "b"], ["y"],
                            domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=NBITS_BLOCK, accuracy_level=4)
    return [node], inits


def fp32_nodes(k: int, n: int) -> tuple[list, dict]:
    """MatMul + Add, fp32 weights."""
    inits = {"w": RNG.standard_normal((k, n)).astype(np.float32) * 0.02,
             "b": np.zeros(n, np.float32)}
    return [helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"])], inits


def matmul_graph(k: int, n: int, precision: str) -> bytes:
    if precision in ("u8s8", "u8u8"):
        nodes, inits = int8_nodes(k, n, precision)
    elif precision.startswith("nbits"):
        nodes, inits = nbits_nodes(k, n, int(precision.removeprefix("nbits")))
    else:
        nodes, inits = fp32_nodes(k, n)
    graph = helper.make_graph(
        nodes, "matmul", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "t", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "t", n])],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in inits.items()])
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def median_seconds(session: ort.InferenceSession, k: int, tokens: int, runs: int) -> float:
    x = RNG.standard_normal((1, tokens, k)).astype(np.float32)
    for _ in range(max(runs // 8, 1)):
        session.run(None, {"x": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[19, 48])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=400, help="timed runs per matmul")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    print(f"host {cpu_model()}, {host_isa().describe()}, ONNX Runtime {ort.__version__}")
    for precision in args.precisions:
        sessions = [ort.InferenceSession(matmul_graph(k, n, precision), options,
                                         providers=["CPUExecutionProvider"]) for k, n in SHAPES]
        for tokens in args.tokens:
            full = [median_seconds(s, k, tokens, args.runs) for s, (k, _) in zip(sessions, SHAPES)]
            one = [median_seconds(s, k, 1, args.runs)
                   for s, (k, _) in zip(sessions[1:], SHAPES[1:])]
            total = (N_LAYER - 1) * sum(full) + full[0] + sum(one)
            rates = [2 * k * n * tokens / t / 1e12 for (k, n), t in zip(SHAPES, full)]
            print(f"{host_isa().name} {precision} {tokens} tokens: 48 matmuls "
                  f"{total * 1e3:.2f} ms ({min(rates):.2f}-{max(rates):.2f} TOP/s per matmul, "
                  f"{args.threads} threads)")


if __name__ == "__main__":
    main()
