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

# The slowest work first (measured in CI, --durations). scripts/test.sh runs the integration phase
# with `--dist loadgroup --no-loadscope-reorder`: every module is one group (a module's fixtures
# stay on one worker, as with loadfile), except the molecule scenarios, each its own group (they
# are independent labs; as one module they were 27 minutes on one worker, the whole phase's
# length). Groups start in this order, so the longest ones do not finish the run alone.
SLOWEST_FIRST = (
    "integration/ansible/test_site_playbook.py",
    "integration/ansible/test_molecule.py::test_molecule_scenario[monitoring_server]",
    "integration/ansible/test_molecule.py::test_molecule_scenario[event_bus]",
    "integration/pipeline/test_event_bus_role.py",
    "integration/ansible/test_molecule.py::test_molecule_scenario[backup]",
    "integration/ansible/test_molecule.py::test_molecule_scenario[baseline]",
    "integration/pipeline/test_bus_workers_failover.py",
    "integration/compliance/test_compliance_lab.py",
    "integration/ansible/test_molecule.py",
    "integration/alerts/test_cli_identity_postgres.py",
    "integration/compliance/test_compliance_signing_pki.py",
    "integration/alerts/test_alertmanager_ha.py",
    "integration/soc_ingest/test_sigkill_cli_real_engine.py",
    "integration/soc_ingest/test_lab_auditd.py",
    "integration/soc_ingest/test_lab_sshd_bruteforce.py",
    "integration/soc_ingest/test_fuzz_intake_smoke.py",
    "integration/detect/test_detect_sigmahq_parity.py",
    "integration/pipeline/test_bus_failover.py",
    # e2e (`-n 2 --dist loadfile`): the two demos on two workers, the consoles after them.
    "e2e/test_demo_bus_nats.py",
    "e2e/test_demo_full.py",
)
SPLIT_MODULES = ("integration/ansible/test_molecule.py",)  # one xdist group per test


def _rank(nodeid: str) -> int:
    path = nodeid.split("::", 1)[0]
    for i, name in enumerate(SLOWEST_FIRST):
        if nodeid.endswith(name) if "::" in name else path.endswith(name):
            return i
    return len(SLOWEST_FIRST)


def _group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return nodeid if path.endswith(SPLIT_MODULES) else path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the slowest work first (stable otherwise); give each test its xdist group."""
    items.sort(key=lambda item: _rank(item.nodeid))
    for item in items:  # read by `--dist loadgroup` only (xdist's hook runs after this one)
        item.add_marker(pytest.mark.xdist_group(_group(item.nodeid)))


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
