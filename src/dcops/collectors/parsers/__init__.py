"""Normalisation: syslog framing, program parsers (sshd, sudo, cron, kernel, Cisco), auditd."""

from __future__ import annotations

from dcops.collectors.parsers.normalise import Normaliser
from dcops.collectors.parsers.syslog_frame import SyslogMessage, parse_syslog

__all__ = ["Normaliser", "SyslogMessage", "parse_syslog"]
