#!/usr/bin/env bash
# Runs `PYTHON ARGS...` as on an x86 host with AVX2 but no VNNI, from any x86-64 host. CI's CPU
# varies and has mostly had VNNI, so without this the AVX2 branches of the int8 targets would
# seldom run (`make test-avx2` runs tests/test_targets.py in it). Two things make the host look
# AVX2-only:
#   - qemu-user's Haswell CPU: CPUID shows AVX2 without AVX-512 or VNNI, so ONNX Runtime picks
#     its AVX2 u8s8 kernels (test_pair_saturation_probe checks that they clip pair sums);
#   - a private mount namespace whose /proc/cpuinfo has the AVX-512, VNNI and AMX flags taken
#     out, as Haswell's CPUID, so spamkit.runtime.isa reads x86-avx2 (checked before ARGS run).
# Emulated, so slow: tests/test_targets.py takes about 6 minutes on 2 cores.
set -euo pipefail
usage="usage: tests/avx2/emulated_host.sh PYTHON ARGS..."
# Haswell less the features qemu's TCG cannot emulate (it warns about each).
CPU=Haswell,-tsc-deadline,-hle,-invpcid,-rtm,-pcid,-x2apic

if [[ ${1:-} == --inside ]]; then  # in the namespace: $2 the edited cpuinfo, $3 the python
    mount --bind "$2" /proc/cpuinfo
    qemu=(qemu-x86_64-static -cpu "$CPU" "$3")
    shift 3
    "${qemu[@]}" - <<'EOF'
import sys
from spamkit.runtime.isa import host_isa
if host_isa().name != "x86-avx2":
    sys.exit(f"not an AVX2-only host: {host_isa().describe()}")
EOF
    exec "${qemu[@]}" "$@"
fi

py=$(command -v "${1:?$usage}")
py=$(realpath -s "$py")  # -s: the venv's python, not the interpreter it links to
shift
command -v qemu-x86_64-static >/dev/null ||
    { apt-get update && apt-get install -y --no-install-recommends qemu-user-static; }
cpuinfo=$(mktemp)
trap 'rm -f "$cpuinfo"' EXIT
sed -E 's/ (avx512[a-z0-9_]*|avx_vnni[a-z0-9_]*|amx_[a-z0-9]*)\b//g' /proc/cpuinfo >"$cpuinfo"
unshare --map-root-user --mount "$(realpath "$0")" --inside "$cpuinfo" "$py" "$@"
