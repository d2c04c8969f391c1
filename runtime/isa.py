"""The host's instruction set, as ONNX Runtime's int8 kernels see it, and what an int8 graph's
target means on it. Pure Python: reads /proc/cpuinfo (Linux) and the machine name, nothing else.

ONNX Runtime (MLAS) multiplies uint8 activations by int8 weights in one of two ways:
  - exact int32 sums: AVX-512 VNNI, AVX-VNNI and AMX (vpdpbusd), ARM64 (udot/sdot, or widening
    multiplies), and u8u8 graphs everywhere;
  - pair sums: x86 without VNNI (SSSE3 to AVX-512BW) multiplies with vpmaddubsw, which adds the
    products of each pair of neighbouring values in a saturating int16. A pair of 8-bit weights
    of one sign times large activations can pass 32767 and be clipped there; a pair whose
    magnitudes add up to 128 at most cannot (255 * 128 = 32640), which is how the `portable`
    and `x86-avx2` targets store theirs.
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

# The host classes, by how their int8 kernels compute.
X86_VNNI, X86_AVX2, X86, ARM64, OTHER = "x86-vnni", "x86-avx2", "x86", "arm64", "other"
ISAS = (X86_VNNI, X86_AVX2, X86, ARM64, OTHER)
EXACT, PAIRS16 = "exact", "pairs16"  # how a u8s8 product is summed
KERNELS = {X86_VNNI: EXACT, X86_AVX2: PAIRS16, X86: PAIRS16, ARM64: EXACT, OTHER: EXACT}
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# The int8 targets `spamkit export --int8 --target` writes for ("auto" resolves to one of them).
TARGETS = (X86_AVX2, X86_VNNI, ARM64, "portable")
# Targets whose weights are 8-bit u8s8: exact only where the kernel sums in int32.
EIGHT_BIT_TARGETS = (X86_VNNI, ARM64)
# Bundles before format 4 do not name a target; their int8 graphs have 8-bit u8s8 weights.
LEGACY_INT8_TARGET = X86_VNNI
CPUINFO = Path("/proc/cpuinfo")
log = logging.getLogger("spamkit.runtime")


@dataclass(frozen=True)
class HostIsa:
    name: str  # one of ISAS
    machine: str  # platform.machine()
    features: tuple[str, ...]  # the int8-relevant flags found (x86 flags, ARM features)

    @property
    def kernel(self) -> str:
        """How ONNX Runtime sums u8s8 products here: EXACT or PAIRS16."""
        return KERNELS[self.name]

    def describe(self) -> str:
        """One line: the class and the flags it was read from."""
        flags = " ".join(self.features) or "no int8 flags read"
        return f"{self.name} ({self.machine}: {flags})"


@functools.cache
def host_isa() -> HostIsa:
    """This machine's ISA class, read once."""
    return classify_host(platform.machine(), _cpuinfo())


def classify_host(machine: str, cpuinfo: str) -> HostIsa:
    """The ISA class of a machine from its name and /proc/cpuinfo text (empty if none)."""
    words = _flags(cpuinfo)
    arch = machine.lower()
    if arch in ("x86_64", "amd64", "i686", "i386", "x86"):
        found = tuple(f for f in ("ssse3", "avx2", "avx512bw", *VNNI_FLAGS) if f in words)
        if any(f in words for f in VNNI_FLAGS):
            return HostIsa(X86_VNNI, machine, found)
        return HostIsa(X86_AVX2 if "avx2" in words else X86, machine, found)
    if arch in ("aarch64", "arm64", "armv8l"):
        found = tuple(f for f in ("asimd", "asimddp", "i8mm", "sve") if f in words)
        return HostIsa(ARM64, machine, found)
    return HostIsa(OTHER, machine, ())


def _cpuinfo() -> str:
    try:
        return CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def _flags(cpuinfo: str) -> set[str]:
    """The words of the first `flags` (x86) or `Features` (ARM) line."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def target_risk(target: str | None, host: HostIsa) -> str | None:
    """Why a graph built for `target` can lose accuracy on `host`, or None when it cannot."""
    if target in EIGHT_BIT_TARGETS and host.kernel == PAIRS16:
        return (f"the int8 graph was built for {target} (8-bit weights); on this {host.name} host "
                f"ONNX Runtime sums int8 products in saturating 16-bit pairs, so its labels can "
                f"differ from fp32 more than export measured: export with --target portable "
                f"(or {X86_AVX2}) for this host")
    return None


@functools.cache
def warn_target_risk(target: str | None) -> str | None:
    """Log target_risk on this host, once per target per process; return it."""
    risk = target_risk(target or LEGACY_INT8_TARGET, host_isa())
    if risk is not None:
        log.warning("spamkit: %s", risk)
    return risk


def isa_facts(precision: str, int8_target: str | None) -> dict[str, str]:
    """This host's ISA and what a graph was built for, as `spamkit bench` and `eval` print."""
    if precision != "int8":
        target = f"any ({precision})"
    else:
        target = int8_target or f"{LEGACY_INT8_TARGET} (8-bit; bundle before format 4)"
    facts = {"host_isa": host_isa().describe(), "graph_target": target}
    if precision == "int8" and (risk := target_risk(int8_target or LEGACY_INT8_TARGET,
                                                   host_isa())) is not None:
        facts["target_risk"] = risk
    return facts
