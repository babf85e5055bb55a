"""Scheduling of the whole suite under pytest-xdist, and the skip policy (scripts/test.sh)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from skip_policy import (  # noqa: F401  (hooks: a skip fails under scripts/test.sh)
    pytest_make_collect_report,
    pytest_runtest_logreport,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)

# The slowest work first (measured in CI, --durations). The e2e phase (`--dist loadfile
# --no-loadscope-reorder`, scripts/test.sh) starts the two demos at once on its two workers.
# Integration keeps xdist's default order: running the molecule scenarios on separate workers
# (one xdist group each) was tried and, with three systemd labs at once beside the site and
# compliance labs, lab hosts of other tests stopped answering (sshd unreachable, snmpd refused).
SLOWEST_FIRST = (
    "integration/ansible/test_site_playbook.py",
    "integration/ansible/test_molecule.py",
    "integration/compliance/test_compliance_lab.py",
    "integration/soc_ingest/test_lab_auditd.py",
    "integration/soc_ingest/test_lab_sshd_bruteforce.py",
    "integration/soc_ingest/test_fuzz_intake_smoke.py",
    "integration/detect/test_detect_sigmahq_parity.py",
    "integration/pipeline/test_bus_failover.py",
    "e2e/test_demo_bus_nats.py",
    "e2e/test_demo_full.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the slowest modules first (stable otherwise)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        for i, name in enumerate(SLOWEST_FIRST):
            if path.endswith(name):
                return i
        return len(SLOWEST_FIRST)

    items.sort(key=rank)


def pytest_configure(config: pytest.Config) -> None:
    """The lab in this process (session and module fixtures included) finds its state and cache
    where a `dcops lab` command started now would: dcops.cli.common.configure_lab."""
    from dcops.cli.common import configure_lab

    configure_lab()


@pytest.fixture(autouse=True)
def _lab_roots() -> Iterator[None]:
    """A test's CLI call or fixture pointing the lab elsewhere does not leak into the next."""
    from dcops.cli.common import configure_lab

    yield
    configure_lab()
