#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its ChromeDriver are installed.
#
# Idempotent: apt-installs `chromium` and `chromium-driver` only if /usr/bin/chromium or
# /usr/bin/chromedriver is missing (needs root, as in CI). The browser tests drive
# exactly these binaries through selenium; selenium-manager never downloads a browser.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
echo "chromium.sh: installing chromium and chromium-driver (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium chromium-driver >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q chromium chromium-driver >&2; }
/usr/bin/chromium --version >&2
