#!/usr/bin/env bash
# Builds the stemwatch container image (CPU by default, --cuda for onnxruntime-gpu) with podman.
#
#   deploy/build-image.sh [--cuda] [--base IMAGE]
#
# The base: IMAGE when given (any Debian/Ubuntu image with python3 >= 3.11, python3-venv and
# tini, e.g. one from your registry), else localhost/stemwatch-base:bookworm, made here when
# missing from Debian packages alone (debootstrap, then podman import): no container registry
# needed. The wheels (stemwatch from this checkout, its dependencies from PyPI or the index
# configured on this machine) are gathered here first; the image build installs them offline.
# Needs: root (debootstrap, podman), podman, debootstrap; apt-get installs them if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Sandboxes and odd hosts: PODMAN="podman --runtime runc" (crun refuses hybrid cgroups),
# RUN_OPTS="--ulimit nofile=20000:20000 --ulimit nproc=4096:4096" (rlimits podman may not raise).
PODMAN="${PODMAN:-podman}"
RUN_OPTS="${RUN_OPTS:-}"

FLAVOUR=cpu
BASE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) FLAVOUR=cuda ;;
    --base) BASE="$2"; shift ;;
    *) echo "usage: $0 [--cuda] [--base IMAGE]" >&2; exit 2 ;;
  esac
  shift
done
TAG="localhost/stemwatch:${FLAVOUR}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PY="${PYTHON:-python3}"

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  else
    echo "build-image: $1 is missing; install $2" >&2; exit 1
  fi
}
need podman podman

if [ -z "$BASE" ]; then
  BASE="localhost/stemwatch-base:${SUITE}"
  if ! $PODMAN image exists "$BASE"; then
    need debootstrap debootstrap
    ROOTFS="$(mktemp -d /tmp/stemwatch-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS"' EXIT
    echo "build-image: debootstrap ${SUITE} from ${MIRROR} (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tini \
      "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" -c . | $PODMAN import \
      --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
    echo "build-image: base $BASE ($($PODMAN image inspect --format '{{.Size}}' "$BASE") bytes)"
  fi
fi

BUILD=deploy/.build
rm -rf "$BUILD" && mkdir -p "$BUILD"
# A wheelhouse of stemwatch and every dependency, made with this machine's pip (its index and
# certificates): the image build then installs offline.
FILE=deploy/Containerfile
if [ "$FLAVOUR" = cuda ]; then
  FILE=deploy/Containerfile.cuda
  "$PY" -m pip wheel --quiet -w "$BUILD" '.[postgres]' 'onnxruntime-gpu[cuda,cudnn]>=1.19'
else
  "$PY" -m pip wheel --quiet -w "$BUILD" '.[cpu,postgres]'
fi
# shellcheck disable=SC2086
$PODMAN build $RUN_OPTS --format docker --network host --build-arg "BASE=$BASE" \
  -f "$FILE" -t "$TAG" "$BUILD"
echo "build-image: $TAG ($($PODMAN image inspect --format '{{.Size}}' "$TAG") bytes) from $BASE"
