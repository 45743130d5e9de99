#!/usr/bin/env bash
# Smoke test of the CPU image (deploy/build-image.sh first): runs what a facility runs and checks
# the heartbeats, as the containers' healthchecks do.
#
#   deploy/smoke-test.sh [IMAGE]        (default localhost/stemwatch:cpu)
#
# 1. SQLite: one daemon container, a folder of synthetic TIFFs mounted read-only at /data, the
#    database in a named volume; waits until status --check passes and every image is done,
#    runs the image's own HEALTHCHECK ($PODMAN healthcheck run), stops it (SIGTERM: exit 0, the
#    heartbeat says "stopped" and --check now fails).
# 2. PostgreSQL (when the server binaries are on this host): a throw-away server on a Unix
#    socket shared with the containers, two daemon containers (two instruments, two folders)
#    writing to it at once; `stemwatch status` from a third container sees both.
# Needs root and podman; runs the containers as the image's non-root user.
# shellcheck disable=SC2086
set -euo pipefail
cd "$(dirname "$0")/.."
# Sandboxes and odd hosts: PODMAN="podman --runtime runc" (crun refuses hybrid cgroups),
# RUN_OPTS="--ulimit nofile=20000:20000 --ulimit nproc=4096:4096" (rlimits podman may not raise).
PODMAN="${PODMAN:-podman}"
RUN_OPTS="${RUN_OPTS:-}"
IMAGE="${1:-localhost/stemwatch:cpu}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/stemwatch-smoke.XXXXXX)"
RUN_ID="swsmoke$$"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || true)"

cleanup() {
  $PODMAN rm -f -v -t 5 "${RUN_ID}-sqlite" "${RUN_ID}-a" "${RUN_ID}-b" >/dev/null 2>&1 || true
  $PODMAN volume rm -f "${RUN_ID}-db" >/dev/null 2>&1 || true
  if [ -n "$PGBIN" ] && [ -d "$WORK/pg/data" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "smoke-test: $*"; }

# Synthetic plates (the project's own microscope simulator), world-readable for the container.
plate() {  # folder plate-name
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
from pathlib import Path
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec
spec = PlateSpec(wells=["A01", "A02", "B01", "B02"], n_fields=1, n_timepoints=3, size=512,
                 plate_name=sys.argv[2], seed=1)
generate_plate(Path(sys.argv[1]), spec)
PYEOF
  chmod -R a+rX "$1"
}

wait_until() {  # seconds command...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 2
  done
}

# -- 1. SQLite in a volume ---------------------------------------------------------------
mkdir -p "$WORK/scope"
plate "$WORK/scope" SMOKE1
N=$(find "$WORK/scope" -name '*.tif' | wc -l)
say "SQLite: daemon container on $N synthetic images"
$PODMAN volume create "${RUN_ID}-db" >/dev/null
$PODMAN run $RUN_OPTS -d --name "${RUN_ID}-sqlite" -e STEMWATCH_INSTRUMENT=smoke-scope \
  -v "$WORK/scope:/data:ro" -v "${RUN_ID}-db:/var/lib/stemwatch" "$IMAGE" >/dev/null
done_count() {
  $PODMAN exec "${RUN_ID}-sqlite" stemwatch status | sed -n 's/^images: *\([0-9]*\) done.*/\1/p'
}
all_done() { [ "$(done_count)" = "$N" ]; }
wait_until 300 $PODMAN exec "${RUN_ID}-sqlite" stemwatch status --check \
  || { $PODMAN logs "${RUN_ID}-sqlite" | tail -30; say "FAIL: no fresh heartbeat"; exit 1; }
wait_until 300 all_done || { $PODMAN logs "${RUN_ID}-sqlite" | tail -30; say "FAIL: $(done_count)/$N done"; exit 1; }
$PODMAN exec "${RUN_ID}-sqlite" stemwatch status --check
$PODMAN healthcheck run "${RUN_ID}-sqlite" && say "image HEALTHCHECK: healthy"
[ "$($PODMAN exec "${RUN_ID}-sqlite" id -u)" != 0 ] || { say "FAIL: runs as root"; exit 1; }
if $PODMAN exec "${RUN_ID}-sqlite" touch /data/written-by-container 2>/dev/null; then
  say "FAIL: /data is writable"; exit 1
fi
$PODMAN stop -t 60 "${RUN_ID}-sqlite" >/dev/null
code=$($PODMAN inspect --format '{{.State.ExitCode}}' "${RUN_ID}-sqlite")
[ "$code" = 0 ] || { say "FAIL: daemon exited $code on SIGTERM"; exit 1; }
if $PODMAN run $RUN_OPTS --rm -v "${RUN_ID}-db:/var/lib/stemwatch" "$IMAGE" status --check; then
  say "FAIL: --check passed for a stopped daemon"; exit 1
fi
say "SQLite: $N/$N images done, healthy while running, non-root, /data read-only, exit 0 on SIGTERM, unhealthy once stopped"

# -- 2. Two instruments into one PostgreSQL --------------------------------------------------
if [ -z "$PGBIN" ]; then
  say "PostgreSQL part skipped: no server binaries on this host (scripts/ensure-postgres.sh)"
  exit 0
fi
mkdir -p "$WORK/pg/sock" "$WORK/a" "$WORK/b"
chmod 711 "$WORK"
chown postgres "$WORK/pg" && chmod 1777 "$WORK/pg/sock"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -U stemwatch --auth=trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-c listen_addresses='' -k $WORK/pg/sock" start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h "$WORK/pg/sock" -U stemwatch stemwatch
URL="postgresql://stemwatch@%2Fpgsock/stemwatch"
plate "$WORK/a" P1
plate "$WORK/b" P1   # the same plate name on the other instrument
say "PostgreSQL: two daemon containers, instruments leica-sp8 and zeiss-cd7"
for who in a b; do
  name=leica-sp8; [ $who = b ] && name=zeiss-cd7
  $PODMAN run $RUN_OPTS -d --name "${RUN_ID}-$who" -e STEMWATCH_DB="$URL" -e STEMWATCH_INSTRUMENT=$name \
    -v "$WORK/pg/sock:/pgsock" -v "$WORK/$who:/data:ro" "$IMAGE" >/dev/null
done
status() { $PODMAN run $RUN_OPTS --rm -v "$WORK/pg/sock:/pgsock" -e STEMWATCH_DB="$URL" "$IMAGE" status "$@"; }
both_done() {
  local out; out="$(status)"
  echo "$out" | grep -q "plate:    leica-sp8/P1: 4 wells, $N images" &&
    echo "$out" | grep -q "plate:    zeiss-cd7/P1: 4 wells, $N images"
}
wait_until 300 both_done || { status || true; $PODMAN logs "${RUN_ID}-a" | tail -20; say "FAIL: not both plates"; exit 1; }
status --check
status | sed -n '1,6p'
$PODMAN healthcheck run "${RUN_ID}-a" && $PODMAN healthcheck run "${RUN_ID}-b" && say "both daemons healthy"
say "PostgreSQL: both instruments' plates in one database, both daemons healthy"
say "OK"
