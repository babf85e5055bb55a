"""A skipped test is a failed test, except for the reasons listed here (one place).

`scripts/test.sh` (and so `make test` and CI) sets DCOPS_TEST_STRICT_SKIPS=1: a test that skips
because root, a tool, a running agent or `../shared` is missing then fails, with the skip reason,
instead of passing unseen. The reasons in ALLOWED are the only skips that may pass; each says why
it cannot be a failure, and the run's summary counts them. A plain `pytest` keeps ordinary skips
(a developer's partial run) and prints the same count.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

# reason prefix -> why this skip is not a failure
ALLOWED: dict[str, str] = {
    "already offline": (
        "tests/unit/iac/test_offline.py re-runs the unit tests without a network; inside that "
        "run, the test that starts it must not start itself again"),
    "an audit sidecar already runs on this machine": (
        "the kernel has one audit netlink socket per machine: a developer's running lab holds it"),
    "an audit daemon is already registered on this machine": (
        "the kernel has one audit netlink socket per machine: a developer's running lab holds it"),
    "lab SNMP ports busy": (
        "the lab's fixed SNMP ports are held by a developer's running `make demo` lab"),
}

STRICT_ENV = "DCOPS_TEST_STRICT_SKIPS"
_allowed_seen: Counter[str] = Counter()


def strict() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


def allowed_reason(reason: str) -> str | None:
    """The ALLOWED key that `reason` starts with, if any."""
    text = reason.removeprefix("Skipped: ").strip()
    for prefix in ALLOWED:
        if text.startswith(prefix):
            return prefix
    return None


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _enforce(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if allowed_reason(reason) is not None or not strict():
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped, and a skip fails under {STRICT_ENV}=1 (scripts/test.sh): {reason}\n"
        "Install what it needs (make setup), run as root, or list the reason with why in "
        "tests/skip_policy.py ALLOWED.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _enforce(outcome.get_result())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs in the controller too under pytest-xdist, where the summary is printed.
    if report.skipped and not hasattr(report, "wasxfail"):
        key = allowed_reason(_reason(report))
        _allowed_seen[key or "not allowed (fails under scripts/test.sh)"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _allowed_seen:
        return
    terminalreporter.section("skips (tests/skip_policy.py)")
    for reason, count in sorted(_allowed_seen.items()):
        why = ALLOWED.get(reason, "")
        terminalreporter.write_line(f"{count:5d}  {reason}" + (f": {why}" if why else ""))
