#!/usr/bin/env bash
# Installs the PostgreSQL server from the distribution's packages (Debian: postgresql), for the
# store's tests: tests/pgserver.py starts a throw-away server from its binaries
# (/usr/lib/postgresql/N/bin: initdb, pg_ctl) in a temp folder, on a Unix socket, as an
# unprivileged user. The packaged cluster service is not needed and not started. Does nothing
# when initdb is there; without root or apt-get it says so and exits 0, and the PostgreSQL
# tests skip with that reason.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: no PostgreSQL server binaries and cannot apt-get them; PostgreSQL tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d: install without starting the packaged cluster (the tests run their own server)
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
echo "ensure-postgres: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
