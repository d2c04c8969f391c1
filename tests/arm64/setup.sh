#!/usr/bin/env bash
# An aarch64 CPython with spamkit.runtime's dependencies, run on this x86 machine by qemu-user:
# `make test-arm64` calls this, then the `arm64` tests. Idempotent: each step leaves a stamp in
# $ARM64_DIR and is skipped the next time. Nothing is installed for arm64 on this machine: the
# Debian packages are unpacked into a sysroot, which qemu searches first (-L) for every path.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/../.."
ARM64_DIR=${ARM64_DIR:-.arm64}
PY=${PY:-.venv/bin/python}
SYSROOT=$ARM64_DIR/sysroot
# Debian's arm64 CPython 3.11, the libraries of the standard modules the runtime loads, and the
# C++ runtime the wheels below link to (not the packages' full dependencies: no curses, dbm...).
DEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6
      zlib1g libexpat1 libssl3 libffi8 libbz2-1.0 liblzma5 libuuid1"
# What the sysroot's /proc/cpuinfo says: a Neoverse N1 (Graviton2, Ampere Altra; the cores of
# recent phones have the same int8 dot-product instructions), the CPU qemu emulates (QEMU_CPU in
# tests/arm64/python). They must agree: ONNX Runtime picks its kernels from this Features line,
# and one that uses an instruction qemu's CPU lacks dies with SIGILL.
ARM64_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm"
ARM64_FEATURES+=" lrcpc dcpop asimddp ssbs"
# The versions of the x86 venv (onnxruntime-gpu's are onnxruntime's), so both sides run the
# same ONNX Runtime; a change of version fetches the wheels again.
PINS=$("$PY" -c "import numpy, onnxruntime, tiktoken
print(*(f'{m.__name__}=={m.__version__}' for m in (onnxruntime, numpy, tiktoken)))")

# apt is shared with other jobs on this machine: wait while another holds its lock, up to 5
# minutes; any other failure is final.
apt_get() {
    local err
    for _ in $(seq 60); do
        err=$(apt-get "$@" 2>&1 >/dev/null) && return 0
        if ! grep -q -E "Could not get lock|Unable to lock|Unable to acquire" <<<"$err"; then
            echo "$err" >&2
            return 1
        fi
        echo "apt-get $1: its lock is held; retrying in 5 s" >&2
        sleep 5
    done
    echo "$err" >&2
    return 1
}

mkdir -p "$ARM64_DIR"
if ! command -v qemu-aarch64-static >/dev/null; then
    apt_get install -y --no-install-recommends qemu-user-static
fi

if [ ! -e "$ARM64_DIR/debs.done" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    apt_get update
    rm -rf "$ARM64_DIR/debs" && mkdir -p "$ARM64_DIR/debs"
    # shellcheck disable=SC2086 # one package name per word
    (cd "$ARM64_DIR/debs" && apt_get download $(printf '%s:arm64 ' $DEBS))
    touch "$ARM64_DIR/debs.done"
fi

if [ ! -e "$ARM64_DIR/sysroot.done" ]; then
    rm -rf "$SYSROOT" && mkdir -p "$SYSROOT"
    for deb in "$ARM64_DIR"/debs/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
    # ONNX Runtime reads /proc/cpuinfo on import to learn the CPU's features, and dies with a
    # segmentation fault on the host's x86 one; qemu looks in the sysroot first.
    mkdir -p "$SYSROOT/proc"
    for i in $(seq 0 $(($(nproc) - 1))); do
        printf '%s\t: %s\n' processor "$i" BogoMIPS 243.75 Features "$ARM64_FEATURES" \
            "CPU implementer" 0x41 "CPU architecture" 8 "CPU variant" 0x3 "CPU part" 0xd0c \
            "CPU revision" 1
        echo
    done > "$SYSROOT/proc/cpuinfo"
    touch "$ARM64_DIR/sysroot.done"
fi

if [ "$(cat "$ARM64_DIR/wheels.done" 2>/dev/null)" != "$PINS" ]; then
    rm -rf "$ARM64_DIR/wheels" "$ARM64_DIR/site" && mkdir -p "$ARM64_DIR/wheels"
    # shellcheck disable=SC2086 # one requirement per word
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
        --dest "$ARM64_DIR/wheels" $PINS
    for whl in "$ARM64_DIR"/wheels/*.whl; do "$PY" -m zipfile -e "$whl" "$ARM64_DIR/site"; done
    echo "$PINS" > "$ARM64_DIR/wheels.done"
fi

# The runtime of this source tree, linked as the package spamkit.runtime (it imports nothing else
# of spamkit; spamkit is a namespace package there): the test runs the code being tested.
mkdir -p "$ARM64_DIR/src/spamkit"
ln -sfn "$(realpath runtime)" "$ARM64_DIR/src/spamkit/runtime"
tests/arm64/python -c "import platform, spamkit.runtime.classifier as c, onnxruntime as o
print('aarch64 CPython', platform.python_version(), 'on', platform.machine(), 'ONNX Runtime',
      o.__version__)"
