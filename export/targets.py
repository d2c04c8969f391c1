"""The int8 targets of `spamkit export --int8 --target`: which weight format each gets.

How each was chosen, with the measurements: docs/targets.md. In short: ONNX Runtime's u8s8
kernels are exact on VNNI and ARM64 hosts, so those get full 8-bit weights; x86 without VNNI
sums pairs of neighbouring products in a saturating int16 (spamkit.runtime.isa), so `x86-avx2`
and `portable` (correct everywhere) get 8-bit weights in which no such pair can pass int16: the
rare pairs of two large same-sign weights are brought within PAIR_LIMIT, and each column takes
the scale that keeps its weights nearest (7-bit weights, the other way to that, move a trained
model's logits more).
"""

from __future__ import annotations

from dataclasses import dataclass

from spamkit.errors import SpamkitError
from spamkit.runtime.isa import ARM64, TARGETS, X86, X86_AVX2, X86_VNNI, HostIsa

AUTO, PORTABLE = "auto", "portable"
TARGET_CHOICES = (AUTO, *TARGETS)
DEFAULT_TARGET = PORTABLE


# The largest |w1| + |w2| of two same-sign neighbouring weights whose products with uint8
# activations cannot pass int16 (255 * 128 = 32640 <= 32767).
PAIR_LIMIT = 32767 // 255


@dataclass(frozen=True)
class Scheme:
    # int8 weights in [-weight_max, weight_max]. (u8u8 weights, exact everywhere too, run on a
    # slower kernel on VNNI: docs/targets.md.)
    weight_max: int = 127
    # With a limit, each pair of neighbouring weights along the sum (rows 2j and 2j+1 of the
    # [in, out] matrix) that shares a sign has |w1| + |w2| <= pair_limit.
    pair_limit: int | None = None


PAIR_SAFE = Scheme(pair_limit=PAIR_LIMIT)
SCHEMES = {X86_VNNI: Scheme(), ARM64: Scheme(), X86_AVX2: PAIR_SAFE, PORTABLE: PAIR_SAFE}
# The target `auto` picks on each host class.
HOST_TARGETS = {X86_VNNI: X86_VNNI, X86_AVX2: X86_AVX2, X86: X86_AVX2, ARM64: ARM64}


def resolve_target(name: str, host: HostIsa) -> str:
    """The concrete target `name` means on `host` ("auto": the host's own)."""
    if name == AUTO:
        return HOST_TARGETS.get(host.name, PORTABLE)
    if name not in TARGETS:
        raise SpamkitError(f"--target must be one of {', '.join(TARGET_CHOICES)}, not {name!r}")
    return name
