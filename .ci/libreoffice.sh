#!/usr/bin/env bash
# Make sure a headless LibreOffice Calc is installed (the CSV export tests open the files
# with a real spreadsheet program, tests/serving/test_export_spreadsheet.py).
#
# Idempotent: apt-installs `libreoffice-calc-nogui` only if `soffice` is missing (needs
# root, as in CI). The tests convert CSV to xlsx with `soffice --headless --convert-to`.
set -euo pipefail

if command -v soffice >/dev/null 2>&1; then
    exit 0
fi
echo "libreoffice.sh: installing libreoffice-calc-nogui (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >&2 \
    || { apt-get update -q >&2 \
        && apt-get install -y -q --no-install-recommends libreoffice-calc-nogui >&2; }
soffice --version >&2
