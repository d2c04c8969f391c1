"""The AVX2-only host of `make test-avx2` (tools/native_host.sh) hides what it says and
nothing else: a trapped cpuid answers without AVX-512, a real illegal instruction still ends the
process. (test_targets.py's probe checks that ONNX Runtime then runs its AVX2 kernels.)"""

import ctypes
import mmap
import os
import signal
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.avx2,
    pytest.mark.skipif("AVX2_OVERLAY" not in os.environ,
                       reason="runs inside tools/native_host.sh (make test-avx2)"),
]

# cpuid leaf 7 with UD0 (0F FF) where cpuid (0F A2) was, as trap_cpuid.py leaves it; stores EBX.
TRAPPED_LEAF7 = bytes.fromhex("b807000000" "31c9" "53" "0fff" "891f" "5b" "c3")
AVX2, AVX512F = 1 << 5, 1 << 16
UD2 = bytes.fromhex("0f0b")  # a real illegal instruction


def run_machine_code(code: bytes, argument: int = 0) -> None:
    """Calls `code` as a C function of one pointer-sized argument."""
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(address)(argument)


def test_trapped_cpuid_keeps_avx2_and_hides_avx512():
    ebx = ctypes.c_uint32()
    run_machine_code(TRAPPED_LEAF7, ctypes.addressof(ebx))
    assert ebx.value & AVX2
    assert not ebx.value & AVX512F


@pytest.mark.parametrize("flags", [[], ["-X", "faulthandler"]])
def test_a_real_illegal_instruction_still_kills_the_process(flags):
    result = subprocess.run([sys.executable, *flags, __file__], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == -signal.SIGILL
    if flags:
        assert "Fatal Python error: Illegal instruction" in result.stderr


if __name__ == "__main__":  # the process the test above runs
    run_machine_code(UD2)
