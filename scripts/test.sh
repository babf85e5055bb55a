#!/usr/bin/env bash
# The whole test suite: unit tests first (fast), then integration tests (real services, lab hosts).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
rc=0
pytest -m "not integration and not e2e" "$@"; r=$?; [ $r -eq 5 ] && r=0; [ $r -ne 0 ] && rc=$r
pytest -m "integration or e2e" "$@"; r=$?; [ $r -eq 5 ] && r=0; [ $r -ne 0 ] && rc=$r
exit $rc
