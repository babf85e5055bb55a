#!/usr/bin/env bash
# The whole test suite: unit tests first (fast), then integration tests (real services, lab hosts),
# then the browser tests.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Parallel workers (pytest-xdist). The integration tests spend most of their time waiting on real
# processes (sshd lab hosts, Ansible, PostgreSQL, NATS), so they run one file per worker (the
# slowest first: tests/conftest.py), more workers than cores; DCOPS_TEST_WORKERS=0 runs
# everything in one process.
workers=${DCOPS_TEST_WORKERS:-}
ncpu=$(nproc)
unit_n=${workers:-$ncpu}
integ_n=${workers:-$((ncpu + 1))}
xdist() { [ "$1" -gt 0 ] && printf -- '-n %s --dist loadfile' "$1"; }
rc=0
# Three sessions: the browser tests' Playwright (sync API) keeps an event loop running in the main
# thread for the rest of its session, which breaks asyncio.run() in the integration tests.
run() {
  pytest "$@"; local r=$?
  [ $r -eq 5 ] && r=0   # no test selected is not a failure
  [ $r -ne 0 ] && rc=$r
  return 0
}
# shellcheck disable=SC2046
run -m "not integration and not e2e" $(xdist "$unit_n") "${@}"
# shellcheck disable=SC2046
run -m "integration and not e2e" $(xdist "$integ_n") --durations=25 "${@}"
run -m "e2e" --durations=10 "${@}"
exit $rc
