"""The audit sidecar never loads control lines: `-e 2` would lock this machine's rules."""

from __future__ import annotations

import pytest

from dcops.errors import LabError
from dcops.lab.auditd_sidecar import sanitize


def test_control_lines_are_dropped_with_their_line_numbers() -> None:
    text = ("## compiled by augenrules\n-D\n-b 8192\n-f 2\n\n-w /etc/passwd -p wa -k identity\n"
            "--backlog_wait_time=60000\n-a always,exit -F arch=b64 -S adjtimex -k time-change\n"
            "-e 2\n")
    rules = sanitize(text, "audit.rules")
    assert rules.rules == [(6, "-w /etc/passwd -p wa -k identity"),
                           (8, "-a always,exit -F arch=b64 -S adjtimex -k time-change")]
    assert rules.dropped == [(2, "-D"), (3, "-b 8192"), (4, "-f 2"),
                             (7, "--backlog_wait_time=60000"), (9, "-e 2")]


@pytest.mark.parametrize("line", [
    "-w /etc/shadow -p wa -k identity -e 2",  # a control option hidden behind a rule
    "-a always,exit -S all -k x --loginuid-immutable",
    "-e 1",
    "-W /etc/passwd -p wa",
])
def test_rule_lines_carrying_control_options_are_dropped(line: str) -> None:
    assert sanitize(line).rules == []


def test_unparseable_line_names_file_and_line() -> None:
    with pytest.raises(LabError, match=r"^x.rules:2: cannot parse"):
        sanitize("-w /etc/passwd\n-w '/etc/unclosed\n", "x.rules")
