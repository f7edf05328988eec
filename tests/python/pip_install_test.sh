#!/usr/bin/env bash
# The package as a user installs it: a venv that sees Debian's numpy, pandas and matplotlib,
# `pip install --no-build-isolation ./python` (offline), and the API suite run from outside the
# repository with nothing on PYTHONPATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
unset PYTHONPATH
cd "$work"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-index --quiet "$root/python"
DLN_EXPECT_INSTALLED=1 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$root/tests/python/api_test.py"
