#!/usr/bin/env bash
# The whole test suite: unit tests first (fast), then integration tests (real services, lab hosts),
# then the browser tests.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Parallel workers (pytest-xdist). The integration tests spend most of their time waiting on real
# processes (sshd lab hosts, Ansible, PostgreSQL, NATS), so they run more workers than cores, the
# slowest first (tests/conftest.py); DCOPS_TEST_WORKERS=0 runs everything in one process.
workers=${DCOPS_TEST_WORKERS:-}
ncpu=$(nproc)
unit_n=${workers:-$ncpu}
integ_n=${workers:-$((ncpu + 1))}
e2e_n=${workers:-2}
# One file per worker. Integration keeps xdist's default order (by test count); e2e keeps the order
# tests/conftest.py gives (slowest first): with xdist's reorder the two demos ran one after the
# other on one worker.
xdist() {
  [ "$1" -gt 0 ] || return 0
  printf -- '-n %s --dist %s' "$1" "${2:-loadfile}"
  [ -n "${3:-}" ] && printf -- ' --no-loadscope-reorder'
  return 0
}
# A skip fails the run unless its reason is listed in tests/skip_policy.py (missing root, tools,
# agents or ../shared are failures, not quiet passes).
export DCOPS_TEST_STRICT_SKIPS=1
rc=0
# The failed tests of every phase, printed again at the very end: CI logs are read from their tail,
# and the unit and integration summaries scroll away behind the later phases.
failures=$(mktemp)
flaky=$(mktemp)
trap 'rm -f "$failures" "$failures".log "$flaky"' EXIT
# Three sessions: the browser tests' Playwright (sync API) keeps an event loop running in the main
# thread for the rest of its session, which breaks asyncio.run() in the integration tests.
run() {
  local phase=$1 retry=$2; shift 2
  pytest "$@" 2>&1 | tee "$failures.log"; local r=${PIPESTATUS[0]}
  [ $r -eq 5 ] && r=0   # no test selected is not a failure
  [ $r -eq 0 ] && return 0
  local ids
  mapfile -t ids < <(sed -nE 's/^(FAILED|ERROR) ([^ ]+)( - .*)?$/\2/p' "$failures.log" | sort -u)
  # Integration and browser tests drive real services on a loaded 2-core machine: one to three
  # failed tests get one more run, alone. Passing then is reported as FLAKY at the end of the run
  # (to be fixed, never silent); failing again, or more failures, fail the run.
  if [ "$retry" = retry ] && [ ${#ids[@]} -ge 1 ] && [ ${#ids[@]} -le 3 ]; then
    echo "== $phase phase: ${#ids[@]} failed; running them once more, alone: ${ids[*]}"
    if pytest -p no:xdist "${ids[@]}" 2>&1 | tee "$failures.log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
      { echo "== $phase phase: FLAKY (failed in the parallel run, passed alone):"
        printf 'FLAKY %s\n' "${ids[@]}"; } >> "$flaky"
      return 0
    fi
  fi
  rc=$r
  echo "== $phase phase: pytest exit $r" >> "$failures"
  grep -E '^(FAILED|ERROR) ' "$failures.log" >> "$failures" || true
  return 0
}
# shellcheck disable=SC2046
run unit no-retry -m "not integration and not e2e" $(xdist "$unit_n") "${@}"
# shellcheck disable=SC2046
run integration retry -m "integration and not e2e" $(xdist "$integ_n") --durations=25 "${@}"
# The two demos (7 and 9 minutes) run side by side, each in its own lab (own namespaces and names).
# shellcheck disable=SC2046
run e2e retry -m "e2e" $(xdist "$e2e_n" loadfile ordered) --durations=10 "${@}"
if [ -s "$flaky" ]; then
  echo "=========================== flaky tests (fix them) ==========================="
  cat "$flaky"
fi
if [ $rc -ne 0 ]; then
  echo "=================== failed tests of the whole run (all phases) ==================="
  cat "$failures"
fi
exit $rc
