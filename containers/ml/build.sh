#!/usr/bin/env bash
# Build the usecase's software image offline from Debian packages:
#   bash containers/ml/build.sh [TAG]      (default rr-ml:1)
# A minimal Debian root filesystem made with debootstrap, with Python 3, numpy, pandas,
# scikit-learn, scikit-image and joblib from Debian's archive, imported with `docker import`.
# Nothing comes from a container registry.
set -euo pipefail
tag=${1:-rr-ml:1}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "build: $tag exists" >&2
  exit 0
fi
# another apt-get running (a package install, unattended upgrades) holds apt's locks: wait
# for them (DPkg::Lock::Timeout, seconds) instead of failing with "Could not get lock"; an
# apt too old to wait for the lists lock is retried
apt_wait=(-o DPkg::Lock::Timeout=600)
apt_retry() {
  local n
  for n in 1 2 3 4 5 6 7 8 9 10; do
    "$@" && return 0
    echo "build: $1 failed (apt locked?), retrying in 10 s ($n/10)" >&2
    sleep 10
  done
  "$@"
}
command -v debootstrap >/dev/null || {
  echo "build: installing debootstrap" >&2
  apt_retry apt-get "${apt_wait[@]}" update -qq >/dev/null
  export DEBIAN_FRONTEND=noninteractive
  apt_retry apt-get "${apt_wait[@]}" install -y -qq debootstrap >/dev/null
}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/rr-ml-rootfs-XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build: debootstrap bookworm into $root from $mirror (takes a few minutes)" >&2
debootstrap --variant=minbase \
  --include=python3,python3-numpy,python3-pandas,python3-sklearn,python3-skimage,python3-joblib \
  bookworm "$root" "$mirror" >/var/tmp/rr-ml-debootstrap.log 2>&1 || {
    tail -n 20 /var/tmp/rr-ml-debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "build: importing as $tag" >&2
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
echo "build: done: $tag" >&2
