"""The int8 targets of `spamkit export --int8 --target`: which weight format each gets.

How each was chosen, with the measurements: docs/targets.md. In short: ONNX Runtime's u8s8
kernels are exact on VNNI and ARM64 hosts, so those get full 8-bit weights; x86 without VNNI
sums pairs of products in a saturating int16 (spamkit.runtime.isa), which 7-bit weights can never
overflow, so `x86-avx2` and `portable` (correct everywhere) get 7-bit weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from spamkit.errors import SpamkitError
from spamkit.runtime.isa import ARM64, TARGETS, X86, X86_AVX2, X86_VNNI, HostIsa

AUTO, PORTABLE = "auto", "portable"
TARGET_CHOICES = (AUTO, *TARGETS)
DEFAULT_TARGET = PORTABLE


@dataclass(frozen=True)
class Scheme:
    # int8 weights in [-weight_max, weight_max]: 127 is 8-bit, 63 is 7-bit. (u8u8 weights, exact
    # everywhere too, measured 2.4-3x slower on VNNI: docs/targets.md.)
    weight_max: int = 127


SEVEN_BIT = Scheme(weight_max=63)
SCHEMES = {X86_VNNI: Scheme(), ARM64: Scheme(), X86_AVX2: SEVEN_BIT, PORTABLE: SEVEN_BIT}
# The target `auto` picks on each host class.
HOST_TARGETS = {X86_VNNI: X86_VNNI, X86_AVX2: X86_AVX2, X86: X86_AVX2, ARM64: ARM64}


def resolve_target(name: str, host: HostIsa) -> str:
    """The concrete target `name` means on `host` ("auto": the host's own)."""
    if name == AUTO:
        return HOST_TARGETS.get(host.name, PORTABLE)
    if name not in TARGETS:
        raise SpamkitError(f"--target must be one of {', '.join(TARGET_CHOICES)}, not {name!r}")
    return name
