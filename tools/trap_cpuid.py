"""Copies an onnxruntime package with each cpuid instruction of its libraries made to trap.

    python tools/trap_cpuid.py SOURCE_PACKAGE_DIR DEST_DIR

Every `cpuid` (0F A2) that objdump finds becomes UD0 (0F FF), an instruction no compiler emits,
so tools/cpuid_mask.c can answer it without AVX-512 or VNNI. DEST_DIR/onnxruntime is the
copy; it is written under a temporary name and renamed, so a half-made copy is never used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CPUID, UD0 = b"\x0f\xa2", b"\x0f\xff"


def cpuid_addresses(library: Path) -> list[int]:
    """Virtual addresses of the cpuid instructions in the library's code."""
    code = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)],
                          capture_output=True, text=True, check=True).stdout
    return [int(hit, 16) for hit in re.findall(r"^\s*([0-9a-f]+):\s+cpuid\s*$", code, re.M)]


def load_segments(library: Path) -> list[tuple[int, int, int]]:
    """(file offset, virtual address, size in file) of each loadable segment."""
    headers = subprocess.run(["readelf", "-lW", str(library)],
                             capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in headers.splitlines()]
    return [(int(r[1], 16), int(r[2], 16), int(r[4], 16)) for r in rows if r and r[0] == "LOAD"]


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def trap_cpuid(library: Path) -> int:
    """Rewrites the library in place; returns how many cpuid instructions now trap."""
    data = bytearray(library.read_bytes())
    segments = load_segments(library)
    addresses = cpuid_addresses(library)
    for address in addresses:
        offset = next(o + address - v for o, v, size in segments if v <= address < v + size)
        if data[offset:offset + 2] != CPUID:
            raise SystemExit(f"{library}: no cpuid at {address:#x}, refusing to patch")
        data[offset:offset + 2] = UD0
    library.write_bytes(data)
    return len(addresses)


def main() -> None:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest, prefix=".partial-"))
    try:
        copy = shutil.copytree(source, work / "onnxruntime")
        libraries = [p for p in copy.rglob("*.so*") if is_elf(p)]
        counts = {p.name: trap_cpuid(p) for p in libraries}
        if not any(counts.values()):
            raise SystemExit(f"{source}: no cpuid instruction found in {sorted(counts)}")
        shutil.rmtree(dest / "onnxruntime", ignore_errors=True)
        copy.rename(dest / "onnxruntime")
        print(f"trapped cpuid in {dest / 'onnxruntime'}: {counts}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
