#!/usr/bin/env bash
# Build a minimal Debian root filesystem image with debootstrap and `docker import` it,
# for hosts that cannot pull images. Cached by tag: does nothing when the tag exists.
#   scripts/bootstrap-rootfs.sh [TAG [SUITE]]
# The suite defaults to the tag's version part: minibinder-rootfs:trixie gives Debian trixie
# (Python 3.13), minibinder-rootfs:bullseye gives bullseye (Python 3.9), bookworm gives 3.11.
set -euo pipefail

tag=${1:-minibinder-rootfs:bookworm}
suite=${2:-${MINIBINDER_DEBIAN_SUITE:-${tag##*:}}}
mirror=${MINIBINDER_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "Root filesystem image $tag exists."
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "Installing debootstrap ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/minibinder-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "debootstrap --variant=minbase $suite (about a minute) ..."
debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# Keep images small: no apt caches, no man pages in later layers.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >/dev/null
echo "Imported $tag."
