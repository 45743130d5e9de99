#!/usr/bin/env bash
# Installs a headless Chromium and its driver for the dashboard's browser tests, from the
# distribution's packages (Debian: chromium, chromium-driver; no browser download from
# elsewhere, and Selenium is pointed at these two so it never fetches one). A font comes along
# so screenshots show text. Does nothing when both are present; without root or apt-get it says
# so and exits 0, and the browser tests skip with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: no chromium/chromedriver and cannot apt-get them; browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "ensure-browser: $(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
