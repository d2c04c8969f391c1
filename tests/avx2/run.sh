#!/usr/bin/env bash
# tests/test_targets.py as on an x86 host with AVX2 but no VNNI, from any x86-64 host: CI's
# machines have VNNI, so without this the tests' AVX2 branches (pairs16 kernels, the load
# warning, `--target auto`) never run. Two things make the host look AVX2-only:
#   - qemu-user's Haswell CPU: CPUID shows AVX2 without AVX-512 or VNNI, so ONNX Runtime picks
#     its AVX2 u8s8 kernels (test_pair_saturation_probe checks that they clip pair sums);
#   - a private mount namespace whose /proc/cpuinfo has the VNNI flags taken out, so
#     spamkit.runtime.isa reads the same CPU as x86-avx2.
# Usage: tests/avx2/run.sh PYTHON [pytest args]. Emulated: about 6 minutes on 2 cores.
set -euo pipefail
self=$(realpath "$0")
usage="usage: tests/avx2/run.sh PYTHON [pytest args]"
[[ ${1:-} == --inside ]] || py=$(realpath -s "${1:?$usage}")  # -s: the venv's, not its target
cd "$(dirname "$self")/../.."
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
    exec "${qemu[@]}" -m pytest -p no:cacheprovider -p no:xdist "$@" tests/test_targets.py
fi

shift
command -v qemu-x86_64-static >/dev/null ||
    { apt-get update && apt-get install -y --no-install-recommends qemu-user-static; }
cpuinfo=$(mktemp)
trap 'rm -f "$cpuinfo"' EXIT
sed -E 's/ (avx512_vnni|avx_vnni|amx_int8)\b//g' /proc/cpuinfo >"$cpuinfo"
unshare --map-root-user --mount "$self" --inside "$cpuinfo" "$py" "$@"
