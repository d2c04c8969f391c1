#!/usr/bin/env bash
# A local base image for the Dockerfile where no registry can be pulled from: Debian bookworm
# with python3 and its venv module (debootstrap, from Debian's packages), imported into podman.
# It trusts this machine's CA bundle, and pip inside is told to use it, so the build's pip
# reaches PyPI as this machine does. Prints the image's name.
# Usage: tests/container/debian_base.sh [IMAGE]
set -euo pipefail
image=${1:-localhost/spamkit-base:bookworm}
if podman image exists "$image"; then echo "$image"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
    > "$work/debootstrap.log" || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$root/etc/pip.conf"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --quiet - "$image" > /dev/null
echo "$image"
