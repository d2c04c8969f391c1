#!/usr/bin/env bash
# Runs `PYTHON ARGS...` as on an x86 host with AVX2 but no VNNI, at native speed, from any x86-64
# host. This project's CPUs vary and have mostly had AVX-512 VNNI, so without this the AVX2
# branches of the int8 targets would seldom run or be timed. Two things make the host look
# AVX2-only:
#   - PYTHON imports a copy of its onnxruntime whose cpuid instructions trap
#     (tools/trap_cpuid.py, made once into $AVX2_OVERLAY) and an LD_PRELOAD shim that
#     answers them without AVX-512, VNNI or AMX (tools/cpuid_mask.c), so ONNX Runtime picks
#     the kernels it runs on an AVX2-only host (test_pair_saturation_probe checks that they clip
#     pair sums); the rest of the process (numpy, glibc) still sees the whole CPU;
#   - a private mount namespace whose /proc/cpuinfo has the AVX-512, VNNI and AMX flags taken
#     out, so spamkit.runtime.isa reads x86-avx2 (checked before ARGS run).
set -euo pipefail
usage="usage: tools/native_host.sh PYTHON ARGS..."
here=$(dirname "$(realpath "$0")")
overlay=${AVX2_OVERLAY:-$here/../.avx2-overlay}

if [[ ${1:-} == --inside ]]; then  # in the namespace: $2 the edited cpuinfo, $3 the python
    mount --bind "$2" /proc/cpuinfo
    shift 2
    "$1" - "$overlay" <<'EOF'
import sys
from pathlib import Path

import onnxruntime
from spamkit.runtime.isa import host_isa

if host_isa().name != "x86-avx2":
    sys.exit(f"not an AVX2-only host: {host_isa().describe()}")
if Path(sys.argv[1]).resolve() not in Path(onnxruntime.__file__).resolve().parents:
    sys.exit(f"onnxruntime from {onnxruntime.__file__}, not the trapped copy in {sys.argv[1]}")
EOF
    exec "$@"
fi

py=$(command -v "${1:?$usage}")
py=$(realpath -s "$py")  # -s: the venv's python, not the interpreter it links to
shift
command -v gcc >/dev/null && command -v objdump >/dev/null ||
    { apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev binutils; }
ort=$("$py" -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))')
# Remade when the venv's onnxruntime, the shim or the patcher changes.
source_id=$(stat -c '%n %s %Y' "$ort"/capi/*.so* && cat "$here/cpuid_mask.c" "$here/trap_cpuid.py" |
    sha256sum)
mkdir -p "$overlay"
(  # one builder at a time: a second run waits, then finds the overlay made
    flock 9
    if [[ ! -f $overlay/source || $(cat "$overlay/source") != "$source_id" ]]; then
        "$py" "$here/trap_cpuid.py" "$ort" "$overlay"
        gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$overlay/cpuid_mask.so.tmp" \
            "$here/cpuid_mask.c" -ldl
        mv "$overlay/cpuid_mask.so.tmp" "$overlay/cpuid_mask.so"
        printf '%s' "$source_id" >"$overlay/source"
    fi
) 9>"$overlay/.lock"
overlay=$(realpath "$overlay")
export AVX2_OVERLAY=$overlay PYTHONPATH=$overlay${PYTHONPATH:+:$PYTHONPATH}
export LD_PRELOAD=$overlay/cpuid_mask.so${LD_PRELOAD:+:$LD_PRELOAD}
cpuinfo=$(mktemp)
trap 'rm -f "$cpuinfo"' EXIT
# The model name says so too: benchmark reports quote it beside their figures.
sed -E -e 's/ (avx512[a-z0-9_]*|avx_vnni[a-z0-9_]*|amx_[a-z0-9]*)\b//g' \
    -e 's/^(model name\s*:.*)$/\1 (AVX-512, VNNI, AMX hidden: tools\/native_host.sh)/' \
    /proc/cpuinfo >"$cpuinfo"
unshare --map-root-user --mount "$(realpath "$0")" --inside "$cpuinfo" "$py" "$@"
