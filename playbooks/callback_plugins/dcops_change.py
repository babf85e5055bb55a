# dcops: a change window for every playbook run (docs/triage.md, "Change windows").
"""Ansible callback: record the run as a dcops change window, so the SOC sees its alerts as
"expected change / thay đổi dự kiến" instead of intrusions.

On the first play it runs ``dcops change open --source ansible`` for the hosts of every play of
the playbook and the accounts the run creates or uses (``dcops_change_accounts``, templated per
host, plus ``$DCOPS_CHANGE_ACCOUNTS``); a later play on hosts outside the window opens one more
under the same ticket; ``v2_playbook_on_stats`` closes them. Stdlib only: it talks to the alert
store through the ``dcops`` command (``$DCOPS_DB_URL``, ``$DCOPS_STATE_DIR`` and
``$DCOPS_TOKEN_FILE`` reach it from the environment). If the store cannot be reached the run goes
on, with a warning that says what was not recorded.

Environment: ``DCOPS_CHANGE_TICKET`` (default ``ansible-<playbook>-<UTC time>``),
``DCOPS_CHANGE_ACCOUNTS`` (comma-separated), ``DCOPS_CHANGE_DURATION`` (e.g. ``3h``),
``DCOPS_CHANGE_DCOPS`` (the dcops command), ``DCOPS_CHANGE_DISABLE=1`` (record nothing). Without
``DCOPS_DB_URL`` or ``DCOPS_STATE_DIR`` it records nothing and says so (no default store).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: dcops_change
type: aggregate
short_description: records each playbook run as a dcops change window
description:
  - Opens a dcops change window (ticket, hosts, accounts) when the first play starts and closes
    it when the run ends, through the dcops command; alerts about those hosts and accounts during
    the run are marked as expected changes in the alert store.
  - Never fails the playbook; warns when the alert store cannot be reached.
requirements:
  - the dcops command (PATH, or DCOPS_CHANGE_DCOPS)
"""

ACCOUNTS_VAR = "dcops_change_accounts"
TIMEOUT = 60


class CallbackModule(CallbackBase):
    """Open a change window at the first play, close it at the end of the run."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dcops_change"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.disabled = os.environ.get("DCOPS_CHANGE_DISABLE", "") not in ("", "0")
        self.playbook: Any = None
        self.playbook_name = "playbook"
        self.ticket = ""
        self.windows: list[int] = []
        self.covered: set[str] = set()
        self.accounts: list[str] = []  # a later play's window keeps the first one's accounts
        self.failed = False
        # Only a named store is written to: a run from a laptop or a test must not fill the
        # default one. Said once, so nobody believes the run was recorded.
        self.store_named = bool(os.environ.get("DCOPS_DB_URL") or
                                os.environ.get("DCOPS_STATE_DIR"))

    # ---- the dcops command -------------------------------------------------------------------

    def _command(self) -> list[str]:
        explicit = os.environ.get("DCOPS_CHANGE_DCOPS", "")
        if explicit:
            return shlex.split(explicit)
        found = shutil.which("dcops")
        return [found] if found else [sys.executable, "-m", "dcops"]

    def _dcops(self, *args: str) -> Any:
        """Run ``dcops ARGS --json``; its JSON, or None after a warning."""
        argv = [*self._command(), *args, "--json"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn(f"`{shlex.join(argv)}`: {exc}")
            return None
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout or "").strip().splitlines()
            self._warn(f"`{shlex.join(argv)}` exited {proc.returncode}: "
                       f"{lines[-1] if lines else 'no output'}")
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            self._warn(f"`{shlex.join(argv)}` did not print JSON")
            return None

    def _warn(self, what: str) -> None:
        self.failed = True
        self._display.warning(
            f"dcops change window NOT recorded ({what}); the run goes on, but its alerts will not "
            f"be marked as expected change: record it by hand (dcops change open --ticket "
            f"{self.ticket or 'TICKET'} --host ...) or tell the SOC / chưa ghi cửa sổ thay đổi")

    # ---- what the run touches --------------------------------------------------------------

    def _hosts(self, play: Any, plays: list[Any]) -> list[str]:
        """Inventory names of the hosts of `plays` (each play's pattern, templated)."""
        from ansible.template import Templar

        manager = play.get_variable_manager()
        inventory = getattr(manager, "_inventory", None)
        names: list[str] = []
        if inventory is None:
            return names
        for p in plays:
            try:
                pattern = p.hosts
                if isinstance(pattern, str) and "{{" in pattern:
                    templar = Templar(loader=p.get_loader(), variables=manager.get_vars(play=p))
                    pattern = templar.template(pattern)
                for h in inventory.get_hosts(pattern):
                    if h.name not in names:
                        names.append(h.name)
            except Exception as exc:  # a pattern not resolved yet: the play itself adds it
                self._display.vv(f"dcops_change: hosts of {p.hosts!r} not resolved: {exc}")
        return names

    def _accounts(self, play: Any, hosts: list[str]) -> list[str]:
        """``dcops_change_accounts`` of each host, templated, and $DCOPS_CHANGE_ACCOUNTS."""
        from ansible.template import Templar

        out = [a.strip() for a in os.environ.get("DCOPS_CHANGE_ACCOUNTS", "").split(",")
               if a.strip()]
        manager = play.get_variable_manager()
        inventory = getattr(manager, "_inventory", None)
        for name in hosts:
            try:
                host = inventory.get_host(name) if inventory is not None else None
                variables = manager.get_vars(play=play, host=host)
                if ACCOUNTS_VAR not in variables:
                    continue
                value = Templar(loader=play.get_loader(), variables=variables).template(
                    variables[ACCOUNTS_VAR])
            except Exception as exc:  # an undefined variable: no accounts from it
                self._display.vv(f"dcops_change: {ACCOUNTS_VAR} of {name}: {exc}")
                continue
            for account in value if isinstance(value, list) else [value]:
                if isinstance(account, str) and account.strip() and account not in out:
                    out.append(account.strip())
        return out

    # ---- callbacks -------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        """Remember the playbook: its plays give the window's hosts."""
        self.playbook = playbook
        path = getattr(playbook, "_file_name", "") or "playbook"
        self.playbook_name = os.path.basename(str(path))

    def v2_playbook_on_play_start(self, play: Any) -> None:
        """Open the window (the first play), or one more for hosts outside it."""
        if self.disabled or (self.failed and not self.windows):
            return
        if not self.store_named:
            self.failed = True
            self._display.warning(
                "dcops change window NOT recorded: no alert store named (set DCOPS_DB_URL or "
                "DCOPS_STATE_DIR, or DCOPS_CHANGE_DISABLE=1 to silence this) / chưa ghi cửa "
                "sổ thay đổi")
            return
        if not self.ticket:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            stem = self.playbook_name.rsplit(".", 1)[0]
            self.ticket = os.environ.get("DCOPS_CHANGE_TICKET", "") or f"ansible-{stem}-{stamp}"
        plays = [play]
        if not self.windows and self.playbook is not None:
            plays = list(self.playbook.get_plays()) or [play]
        hosts = [h for h in self._hosts(play, plays) if h not in self.covered]
        if not hosts:
            return
        args = ["change", "open", "--ticket", self.ticket, "--source", "ansible",
                "--summary", f"ansible-playbook {self.playbook_name}"]
        for h in hosts:
            args += ["--host", h]
        for a in self._accounts(play, hosts):
            if a not in self.accounts:
                self.accounts.append(a)
        for a in self.accounts:
            args += ["--account", a]
        if os.environ.get("DCOPS_CHANGE_DURATION"):
            args += ["--duration", os.environ["DCOPS_CHANGE_DURATION"]]
        window = self._dcops(*args)
        if isinstance(window, dict) and "id" in window:
            self.windows.append(int(window["id"]))
            self.covered.update(hosts)
            self._display.display(
                f"dcops: change window {window['id']} ({self.ticket}) open on {len(hosts)} "
                f"host(s), accounts {', '.join(window.get('accounts') or ['*'])} / đã mở cửa "
                f"sổ thay đổi")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        """Close the run's windows."""
        for window_id in self.windows:
            closed = self._dcops("change", "close", str(window_id))
            if isinstance(closed, list) and closed:
                w = closed[0]
                self._display.display(
                    f"dcops: change window {window_id} ({self.ticket}) closed; "
                    f"{w.get('alerts', 0)} expected alert(s) so far / đã đóng cửa sổ thay đổi")
        self.windows.clear()
