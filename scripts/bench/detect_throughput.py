#!/usr/bin/env python3
"""Detection throughput: JSON line in -> alert out, dcops vs pySigma's SQLite and DuckDB backends.

Generates N events (default 1,000,000) for the logsources of SigmaHQ's Linux rules (process
creation, auditd, file events, network connections, syslog/sshd/cron), mostly benign with a
small share of positives synthesised from the rules, writes them as JSON lines, then times:

  baseline  orjson.loads of every line (the limit: nothing can be faster than parsing)
  dcops     parse -> Event -> Engine.process (batches of 1000) -> detection JSON line
  workers   dcops with `detect scan --workers 2` (processes, events routed by correlation key)
  sqlite    parse -> INSERT into SQLite -> every converted rule query -> alert JSON line
  duckdb    DuckDB's own JSON reader loads the file -> every query pysigma-backend-duckdb
            converts -> alert JSON line (one DuckDB thread)

and checks that the engines raised exactly the same (rule, event) alerts: any difference with
the SQLite backend or between 1 and 2 workers is printed and the script exits 1; the DuckDB
peer is compared on the rules it can run, and each difference is explained or the script exits 1.

`--windows` runs SigmaHQ's Windows rules (rules/windows and rules-threat-hunting/windows, 2,500-odd)
over a Windows mix instead: 200,000 events by default, Sysmon process creation, network, image
load, registry and file events, Security logons and PowerShell script blocks of a department's
office PCs, plus the positives; an umbrella category's rules (registry_event) see its members'
events on both sides. DuckDB is not run there.

`--repeat R` runs every contender R times and prints each one's best run; the parse-only baseline
and dcops alternate their order round after round, and dcops's share of the parse rate (the
issue's >= 25 %) is printed per round with its median and spread, with a verdict only when every
round falls on the same side of 25 %.

Usage: .venv/bin/python scripts/bench/detect_throughput.py [--events N] [--repeat R] [--no-peer]
       [--windows] [--sigmahq DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "detect"))  # the corpus synthesiser

from sigma.backends.sqlite import sqliteBackend  # noqa: E402
from sigma.collection import SigmaCollection  # noqa: E402
from sigma.exceptions import SigmaError  # noqa: E402
from sigma.rule import SigmaRule  # noqa: E402
from sigma_backend_duckdb import DuckDBBackend  # noqa: E402
from sigma_corpus import Synth, logsource_of, rule_fields  # noqa: E402

from dcops.collectors.heap import batch_gc  # noqa: E402
from dcops.detect import Engine, load_rules  # noqa: E402
from dcops.detect.jsonio import (  # noqa: E402
    detection_line,
    event_from_obj,
    py_event_from_obj,
)
from dcops.detect.parallel import scan_parallel  # noqa: E402
from dcops.model.event import UMBRELLA_CATEGORIES  # noqa: E402

BINS = ["ls", "cat", "grep", "sed", "awk", "python3", "bash", "sh", "systemctl", "journalctl",
        "ps", "top", "find", "tar", "gzip", "rsync", "ssh", "scp", "vim", "less", "cp", "mv",
        "mkdir", "rm", "date", "sleep", "logrotate", "apt-get", "dpkg", "java", "nginx",
        "postgres", "psql", "node", "php-fpm8.2", "cron", "sudo", "id", "hostname", "uname"]
DIRS = ["/usr/bin/", "/bin/", "/usr/sbin/", "/usr/local/bin/", "/opt/lgsp/bin/"]
USERS = ["root", "admin", "lgsp", "portal", "postgres", "www-data", "backup", "canbo01"]
PATHS = ["/var/log/syslog", "/etc/hosts", "/opt/lgsp/conf/app.yml", "/home/admin/.bashrc",
         "/var/lib/postgresql/15/main/base/1", "/srv/portal/index.php", "/tmp/upload-1234"]
SYSLOG = ["systemd[1]: Started Session {n} of user {u}.", "CRON[{n}]: ({u}) CMD (run-parts)",
          "sshd[{n}]: Accepted publickey for {u} from 10.10.40.{m} port {n} ssh2",
          "kernel: [{n}.123] eth0: link up", "nginx[{n}]: GET /api/v1/hoso/{n} 200"]


def _benign(rng: random.Random, i: int) -> dict[str, Any]:
    kind = rng.random()
    ts = f"2026-11-20T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"
    u = rng.choice(USERS)
    if kind < 0.45:
        b = rng.choice(BINS)
        img = rng.choice(DIRS) + b
        words = ["-l", "-v", "--help", rng.choice(PATHS), str(rng.randint(1, 9999))]
        args = " ".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
        f = {"Image": img, "CommandLine": f"{b} {args}".strip(), "User": u,
             "ParentImage": "/usr/bin/bash", "ParentCommandLine": "-bash",
             "CurrentDirectory": "/home/" + u, "ProcessId": rng.randint(100, 99999)}
        ls = {"product": "linux", "category": "process_creation"}
    elif kind < 0.7:
        p = rng.choice(PATHS)
        f = {"type": "SYSCALL", "SYSCALL": rng.choice(["openat", "execve", "connect"]),
             "exe": rng.choice(DIRS) + rng.choice(BINS), "comm": rng.choice(BINS), "key": "audit",
             "a0": str(rng.randint(0, 9)), "a1": p, "name": p, "uid": rng.randint(0, 1200)}
        ls = {"product": "linux", "service": "auditd"}
    elif kind < 0.8:
        f = {"TargetFilename": rng.choice(PATHS) + str(rng.randint(0, 99)),
             "Image": rng.choice(DIRS) + rng.choice(BINS)}
        ls = {"product": "linux", "category": "file_event"}
    elif kind < 0.85:
        f = {"Image": rng.choice(DIRS) + rng.choice(BINS),
             "DestinationIp": f"10.10.20.{rng.randint(1, 254)}",
             "DestinationPort": rng.choice([443, 5432, 8080]), "Initiated": "true"}
        ls = {"product": "linux", "category": "network_connection"}
    else:
        f = {}
        ls = {"product": "linux", "service": rng.choice(["syslog", "sshd", "cron", "auth"])}
    f["message"] = rng.choice(SYSLOG).format(n=rng.randint(1, 65000), u=u, m=rng.randint(1, 254))
    f["host.name"] = f"lgsp-app-{rng.randint(1, 20):02d}"
    return {"id": f"e{i}", "timestamp": ts, "logsource": ls, "fields": f}


SYS32 = "C:\\Windows\\System32\\"
OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
EXPLORER = "C:\\Windows\\explorer.exe"
# (image, parent image, command line): what office PCs and servers of a department run
WIN_PROCS = [
    (SYS32 + "svchost.exe", SYS32 + "services.exe",
     SYS32 + "svchost.exe -k netsvcs -p -s Schedule"),
    (SYS32 + "svchost.exe", SYS32 + "services.exe", SYS32 + "svchost.exe -k LocalService -p"),
    (EXPLORER, SYS32 + "userinit.exe", "C:\\Windows\\Explorer.EXE"),
    (CHROME, EXPLORER, f'"{CHROME}" --type=renderer --lang=vi --field-trial-handle=1'),
    (OFFICE + "WINWORD.EXE", EXPLORER, f'"{OFFICE}WINWORD.EXE" /n "{{doc}}"'),
    (OFFICE + "EXCEL.EXE", EXPLORER, f'"{OFFICE}EXCEL.EXE"'),
    (SYS32 + "RuntimeBroker.exe", SYS32 + "svchost.exe", SYS32 + "RuntimeBroker.exe -Embedding"),
    (SYS32 + "taskhostw.exe", SYS32 + "svchost.exe", "taskhostw.exe"),
    (SYS32 + "SearchIndexer.exe", SYS32 + "services.exe", SYS32 + "SearchIndexer.exe /Embedding"),
    ("C:\\Program Files\\VNPT-CA\\Plugin\\VnptCaPlugin.exe", EXPLORER,
     '"C:\\Program Files\\VNPT-CA\\Plugin\\VnptCaPlugin.exe" --tray'),
    ("C:\\Users\\canbo01\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe", EXPLORER,
     '"C:\\Users\\canbo01\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe" /background'),
]
WIN_NET = [(CHROME, 443), (OFFICE + "OUTLOOK.EXE", 443), (SYS32 + "svchost.exe", 443),
           ("C:\\Users\\canbo01\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe", 443),
           (SYS32 + "lsass.exe", 88), (SYS32 + "lsass.exe", 389)]
WIN_USERS = ["DONGNAI\\canbo01", "DONGNAI\\vanthu02", "DONGNAI\\ketoan03", "NT AUTHORITY\\SYSTEM"]
WIN_DOCS = ["C:\\Users\\canbo01\\Documents\\Quyet dinh {n}.docx",
            "C:\\Users\\vanthu02\\Downloads\\Cong van {n}.pdf",
            "C:\\Users\\ketoan03\\Documents\\Bao cao quy {n}.xlsx"]
WIN_KEYS = [
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\{n}",
    "HKU\\S-1-5-21-1-2-3-1107\\SOFTWARE\\Microsoft\\Office\\16.0\\Word\\File MRU\\Item {n}",
    "HKU\\S-1-5-21-1-2-3-1107\\SOFTWARE\\VNPT-CA\\Plugin\\LastToken"]
WIN_SCRIPTS = ["Get-ChildItem -Path C:\\Users\\canbo01\\Documents", "Get-Service -Name Spooler",
               "Import-Module ActiveDirectory; Get-ADUser canbo01", "Get-Date -Format yyyy-MM-dd"]


def _benign_windows(rng: random.Random, i: int) -> dict[str, Any]:
    """Ordinary office and server activity of a provincial department: Sysmon, Security and
    PowerShell events as a Wazuh agent ships them (SigmaHQ field names)."""
    kind = rng.random()
    ts = f"2026-11-20T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"
    n = rng.randint(1, 9999)
    img, parent, cmd = rng.choice(WIN_PROCS)
    f: dict[str, Any]
    if kind < 0.40:
        f = {"EventID": 1, "Image": img, "OriginalFileName": img.rsplit("\\", 1)[-1],
             "CommandLine": cmd.format(doc=rng.choice(WIN_DOCS).format(n=n)),
             "ParentImage": parent, "User": rng.choice(WIN_USERS),
             "IntegrityLevel": rng.choice(["Medium", "System"]), "CurrentDirectory": SYS32}
        ls = {"product": "windows", "category": "process_creation"}
    elif kind < 0.55:
        net_img, port = rng.choice(WIN_NET)
        f = {"EventID": 3, "Image": net_img, "Initiated": "true", "Protocol": "tcp",
             "DestinationIp": f"10.10.{rng.randint(1, 40)}.{rng.randint(1, 254)}",
             "DestinationPort": port, "DestinationHostname": rng.choice(
                 ["dichvucong.dongnai.gov.vn", "lgsp.dongnai.gov.vn", "qlvb.dongnai.gov.vn"])}
        ls = {"product": "windows", "category": "network_connection"}
    elif kind < 0.65:
        f = {"EventID": 7, "Image": img, "Signed": "true", "SignatureStatus": "Valid",
             "ImageLoaded": SYS32 + rng.choice(
                 ["kernel32.dll", "user32.dll", "combase.dll", "msvcp_win.dll", "ole32.dll"])}
        ls = {"product": "windows", "category": "image_load"}
    elif kind < 0.75:
        f = {"EventID": 13, "EventType": "SetValue", "Image": img,
             "TargetObject": rng.choice(WIN_KEYS).format(n=n), "Details": f"DWORD (0x{n:08x})"}
        ls = {"product": "windows", "category": "registry_set"}
    elif kind < 0.83:
        f = {"EventID": 11, "Image": img, "TargetFilename": rng.choice(WIN_DOCS).format(n=n)}
        ls = {"product": "windows", "category": "file_event"}
    elif kind < 0.93:
        f = {"EventID": 4624, "LogonType": rng.choice([2, 3, 10]),
             "TargetUserName": rng.choice(WIN_USERS).rsplit("\\", 1)[-1],
             "TargetDomainName": "DONGNAI", "LogonProcessName": "Kerberos",
             "IpAddress": f"10.10.{rng.randint(1, 40)}.{rng.randint(1, 254)}",
             "WorkstationName": f"PC-XA-{rng.randint(1, 95):02d}",
             "AuthenticationPackageName": rng.choice(["Kerberos", "NTLM"])}
        ls = {"product": "windows", "service": "security"}
    else:
        f = {"EventID": 4104, "ScriptBlockText": rng.choice(WIN_SCRIPTS)}
        ls = {"product": "windows", "category": "ps_script"}
    f["Computer"] = f"PC-XA-{rng.randint(1, 95):02d}.dongnai.local"
    f["host.name"] = f["Computer"]
    return {"id": f"e{i}", "timestamp": ts, "logsource": ls, "fields": f}


def generate(path: Path, n: int, rules: list[SigmaRule], share: float = 0.005,
             benign: Any = _benign) -> None:
    """Write n events as JSON lines: benign ones and ~share positives from the rules."""
    rng = random.Random(42)
    synth = Synth(seed=42)
    pool: list[tuple[dict[str, str], dict[str, Any]]] = []
    for r in rules:
        p, s, c = logsource_of(r)
        ls = {k: v for k, v in (("product", p), ("service", s), ("category", c)) if v}
        try:
            pool += [(ls, e) for e in synth.positives(r, 2)]
        except (SigmaError, IndexError, ValueError):  # a rule the synthesiser cannot satisfy
            continue
    with path.open("wb") as fh:
        for i in range(n):
            if pool and rng.random() < share:
                ls, f = rng.choice(pool)
                obj = {"id": f"e{i}", "timestamp": "2026-11-20T03:00:00Z", "logsource": ls,
                       "fields": {"message": "", **f}}
            else:
                obj = benign(rng, i)
            fh.write(orjson.dumps(obj) + b"\n")


def lines(path: Path) -> BinaryIO:
    """The file, iterated line by line by every contender (no generator frame per line)."""
    return path.open("rb")


def run_baseline(path: Path) -> tuple[float, float, int]:
    """orjson.loads every line."""
    t, c = time.perf_counter(), time.process_time()
    n = 0
    with lines(path) as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    return time.perf_counter() - t, time.process_time() - c, n


def run_dcops(path: Path, dirs: list[Path]) -> tuple[float, float, list[tuple[str, str]]]:
    """Parse, build events, detect, serialise alerts; returns (wall, cpu, (rule, event) alerts)."""
    engine = Engine(load_rules(dirs))
    sink = open(os.devnull, "wb")  # noqa: SIM115
    t, c = time.perf_counter(), time.process_time()
    alerts: list[tuple[str, str]] = []
    batch = []
    loads = orjson.loads
    with lines(path) as fh:
        for line in fh:
            batch.append(event_from_obj(loads(line), line))
            if len(batch) == 1000:
                for d in engine.process(batch):
                    sink.write(detection_line(d) + b"\n")
                    alerts.append((d.rule_id, d.event_ids[0]))
                batch = []
    for d in engine.process(batch):
        sink.write(detection_line(d) + b"\n")
        alerts.append((d.rule_id, d.event_ids[0]))
    sink.close()
    return time.perf_counter() - t, time.process_time() - c, alerts


# an umbrella category's rules see the events of its members (SigmaHQ's registry_event covers
# Sysmon 12, 13 and 14), as dcops' LogSource.views() does
MEMBERS: dict[str, set[str]] = {}
for _member, _parents in UMBRELLA_CATEGORIES.items():
    for _parent in _parents:
        MEMBERS.setdefault(_parent, {_parent}).add(_member)


def run_sqlite(
    path: Path, rules: list[SigmaRule]
) -> tuple[float, float, list[tuple[str, str]], set[str]]:
    """Parse, insert into SQLite, run every converted query, serialise alerts."""
    t, c = time.perf_counter(), time.process_time()
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None,
                       deterministic=True)
    cols: dict[str, str] = {"message": "message", "host.name": "host.name"}
    for r in rules:
        for k in rule_fields(r):
            cols.setdefault(k.lower(), k)
    spec = ", ".join(f"`{v}` COLLATE NOCASE" for v in cols.values())
    db.execute(f"CREATE TABLE logs (eid TEXT, ls_p TEXT, ls_s TEXT, ls_c TEXT, {spec})")
    with lines(path) as fh:
        for line in fh:
            o = orjson.loads(line)
            f, ls = o["fields"], o["logsource"]
            known = {k: v for k, v in f.items() if k.lower() in cols}
            quoted = (f"`{cols[k.lower()]}`" for k in known)
            names = ", ".join(["eid", "ls_p", "ls_s", "ls_c", *quoted])
            vals = [o["id"], ls.get("product", ""), ls.get("service", ""), ls.get("category", ""),
                    *known.values()]
            db.execute(f"INSERT INTO logs ({names}) VALUES ({', '.join('?' * len(vals))})", vals)
    views: dict[tuple[str, str, str], str] = {}
    alerts: list[tuple[str, str]] = []
    unconverted: set[str] = set()
    sink = open(os.devnull, "wb")  # noqa: SIM115
    for r in rules:
        ls = logsource_of(r)
        if ls not in views:
            views[ls] = f"v{len(views)}"
            conds = [f"{k} = '{v}'" for k, v in zip(("ls_p", "ls_s"), ls[:2], strict=True) if v]
            if ls[2]:
                cats = sorted(MEMBERS.get(ls[2], {ls[2]}))
                conds.append(f"ls_c IN ({', '.join(repr(c) for c in cats)})")
            where = " AND ".join(conds) or "1"
            db.execute(f"CREATE VIEW {views[ls]} AS SELECT * FROM logs WHERE {where}")
        try:
            queries = sqliteBackend(table=views[ls], collate_nocase=True,
                                    fulltext_field="message").convert_rule(r)
        except Exception:  # the peer cannot convert it: counted
            unconverted.add(str(r.id))
            continue
        for q in queries:
            for row in db.execute(f"SELECT eid FROM ({q})"):
                sink.write(orjson.dumps({"rule_id": str(r.id), "event_id": row[0]}) + b"\n")
                alerts.append((str(r.id), row[0]))
    sink.close()
    return time.perf_counter() - t, time.process_time() - c, alerts, unconverted


def run_workers(
    path: Path, dirs: list[Path], workers: int
) -> tuple[float, float, list[tuple[str, str]]]:
    """What `dcops detect scan --workers N` does; CPU is the parent's plus the workers'."""
    engine = Engine(load_rules(dirs))
    out: list[bytes] = []
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    t, c = time.perf_counter(), time.process_time()
    with lines(path) as fh:
        scan_parallel(engine, fh, out.append, workers, str(path))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime - kids.ru_utime) + (after.ru_stime - kids.ru_stime)
    alerts = []
    for blob in out:
        for line in blob.splitlines():
            d = orjson.loads(line)
            alerts.append((d["rule_id"], d["event_ids"][0]))
    return wall, cpu, alerts


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_name(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def load_duckdb(path: Path, rules: list[SigmaRule]) -> duckdb.DuckDBPyConnection:
    """DuckDB reads the JSON lines itself: one VARCHAR column per rule field, NOCASE collation.

    NOCASE for the same reason as the SQLite peer's collate_nocase: Sigma's `=` ignores case and
    the backend emits a plain `=` for it (its ILIKE ones ignore case already).
    """
    db = duckdb.connect(":memory:")
    db.execute("SET threads = 1")  # one core, like the others
    cols: dict[str, str] = {"message": "message"}
    for r in rules:
        for k in rule_fields(r):
            cols.setdefault(k.lower(), k)
    struct = ", ".join(f"{_sql_name(v)} VARCHAR" for v in cols.values())
    spec = ("{'id': 'VARCHAR', 'logsource': 'STRUCT(product VARCHAR, service VARCHAR, "
            f"category VARCHAR)', 'fields': {_sql_str(f'STRUCT({struct})')}}}")
    sel = ", ".join(
        f"fields.{_sql_name(v)} COLLATE NOCASE AS {_sql_name(v)}" for v in cols.values()
    )
    db.execute(
        "CREATE TABLE logs AS SELECT id AS eid, coalesce(logsource.product, '') AS ls_p, "
        "coalesce(logsource.service, '') AS ls_s, coalesce(logsource.category, '') AS ls_c, "
        f"{sel} FROM read_ndjson({_sql_str(str(path))}, columns={spec})"
    )
    return db


def duckdb_queries(
    db: duckdb.DuckDBPyConnection, rules: list[SigmaRule]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each rule's converted queries over a view of its logsource; the rules it cannot convert."""
    views: dict[tuple[str, str, str], str] = {}
    queries: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for r in rules:
        ls = logsource_of(r)
        if ls not in views:
            views[ls] = f"v{len(views)}"
            conds = [f"{k} = '{v}'" for k, v in zip(("ls_p", "ls_s", "ls_c"), ls, strict=True) if v]
            db.execute(f"CREATE VIEW {views[ls]} AS SELECT * FROM logs WHERE "
                       f"{' AND '.join(conds) or 'true'}")
        backend = DuckDBBackend()
        backend.table = views[ls]
        try:
            queries[str(r.id)] = [str(q) for q in backend.convert_rule(r)]
        except Exception as exc:  # the peer cannot convert it: counted with the reason
            refused[str(r.id)] = f"not converted: {str(exc).split('.')[0]}"
    return queries, refused


def run_duckdb(
    path: Path, rules: list[SigmaRule]
) -> tuple[float, float, list[tuple[str, str]], dict[str, str]]:
    """Load the lines into DuckDB, run every converted query, serialise alerts."""
    t, c = time.perf_counter(), time.process_time()
    db = load_duckdb(path, rules)
    queries, refused = duckdb_queries(db, rules)
    alerts: list[tuple[str, str]] = []
    sink = open(os.devnull, "wb")  # noqa: SIM115
    for rid, qs in queries.items():
        try:
            rows = [row for q in qs for row in db.execute(f"SELECT eid FROM ({q})").fetchall()]
        except duckdb.Error as exc:  # a query DuckDB rejects: counted with the reason
            refused[rid] = f"query rejected: {str(exc).splitlines()[0]}"
            continue
        for (eid,) in rows:
            sink.write(orjson.dumps({"rule_id": rid, "event_id": eid}) + b"\n")
            alerts.append((rid, eid))
    sink.close()
    return time.perf_counter() - t, time.process_time() - c, alerts, refused


def sigma_not(q: str) -> str:
    """`NOT (x)` as Sigma means it: NOT coalesce((x), false) (SQL's NOT of NULL is NULL, but
    Sigma's condition on an absent field is false, so its negation holds)."""
    out: list[str] = []
    stack: list[int] = []
    depth = 0
    quote = ""
    i = 0
    while i < len(q):
        ch = q[i]
        if quote:
            out.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif q.startswith("NOT (", i) and (i == 0 or not q[i - 1].isalnum()):
            out.append("NOT coalesce((")
            stack.append(depth)
            depth += 1
            i += 5
            continue
        elif (q.startswith("NOT ", i) and (i == 0 or not q[i - 1].isalnum())
              and not q.startswith("NOT NULL", i)):  # IS NOT NULL is no negation of a match
            j = _operand_end(q, i + 4)  # one comparison: NOT Image ILIKE '%/x'
            out.append(f"NOT coalesce(({q[i + 4:j]}), false)")
            i = j
            continue
        elif ch == "(":
            depth += 1
            out.append(ch)
        elif ch == ")":
            depth -= 1
            out.append(")")
            if stack and stack[-1] == depth:
                stack.pop()
                out.append(", false)")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _operand_end(q: str, i: int) -> int:
    """Where the comparison starting at i ends: the next top-level AND/OR or closing paren."""
    depth, quote = 0, ""
    while i < len(q):
        ch = q[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and (q.startswith(" AND ", i) or q.startswith(" OR ", i)):
            return i
        i += 1
    return i


def explain_duckdb(path: Path, rules: list[SigmaRule], mine: dict[str, set[str]]) -> list[str]:
    """Rerun the peer's differing rules with NOT read as Sigma means it; the rules that still
    disagree with dcops (`mine`: those rules' events in dcops) are returned."""
    db = load_duckdb(path, rules)
    queries, _ = duckdb_queries(db, rules)
    still = []
    for rid, events in mine.items():
        got = {e for q in queries[rid]
               for (e,) in db.execute(f"SELECT eid FROM ({sigma_not(q)})").fetchall()}
        if got != events:
            still.append(rid)
    return still


def calibrate() -> float:
    """CPU seconds for 10 million Python additions: how loaded and fast this core is right now."""
    c = time.process_time()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.process_time() - c


def race_parse(
    path: Path, dirs: list[Path], rounds: int
) -> tuple[tuple[float, float, int], tuple[float, float, list[tuple[str, str]]], list[float]]:
    """The parse-only baseline and dcops in alternating order, round after round: the best run
    of each, and dcops's share of the parse rate per round (CPU time of the parse / of dcops)."""
    base: list[tuple[float, float, int]] = []
    mine: list[tuple[float, float, list[tuple[str, str]]]] = []
    for r in range(rounds):
        if r % 2:
            mine.append(run_dcops(path, dirs))
            base.append(run_baseline(path))
        else:
            base.append(run_baseline(path))
            mine.append(run_dcops(path, dirs))
    shares = [100 * b[1] / m[1] for b, m in zip(base, mine, strict=True)]
    return min(base), min(mine), shares


def share_of_parse(shares: list[float], windows: bool) -> str:
    """dcops's share of the parse-only rate per round (the issue's >= 25 % on the Linux mix):
    the median, the spread, and a verdict only when the spread does not straddle the target."""
    how = ("compiled (_fastread)" if event_from_obj is not py_event_from_obj
           else "Python (DCOPS_DETECT_PURE set, or _fastread not built)")
    med, low, high = statistics.median(shares), min(shares), max(shares)
    target = 25.0  # the share of the parse rate, on the Linux mix
    verdict = ("the 25 % target is the Linux mix's" if windows
               else "above the 25 % target" if low >= target
               else "below the 25 % target" if high < target
               else "within the noise of the 25 % target")
    return (f"          = {med:.1f} % of the parse-only rate per CPU-second, median of "
            f"{len(shares)} alternating round(s) ({' '.join(f'{x:.1f}' for x in shares)}; "
            f"spread {high - low:.1f} points): {verdict}; reader and "
            f"column index: {how}")


def main() -> None:
    """Generate, run the contenders, print figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=None,
                    help="events to generate (default 1,000,000; 200,000 with --windows)")
    ap.add_argument("--windows", action="store_true",
                    help="SigmaHQ's Windows rules over a Windows event mix (Sysmon, Security, "
                         "PowerShell) instead of the Linux ones; DuckDB is not run")
    ap.add_argument("--sigmahq", type=Path, default=ROOT.parent / "shared" / "sigmahq")
    ap.add_argument("--no-peer", action="store_true",
                    help="skip the SQLite and DuckDB backend runs")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each contender R times and keep its best (least disturbed) run")
    args = ap.parse_args()
    os_name = "windows" if args.windows else "linux"
    label = os_name.capitalize()
    events = args.events or (200_000 if args.windows else 1_000_000)
    dirs = [args.sigmahq / "rules" / os_name, args.sigmahq / "rules-threat-hunting" / os_name]
    dirs = [d for d in dirs if d.is_dir()]
    if not dirs:
        sys.exit(f"no SigmaHQ {label} rules under {args.sigmahq}")
    coll = SigmaCollection.load_ruleset([str(d) for d in dirs])
    rules = [r for r in coll.rules if isinstance(r, SigmaRule)]
    rs = load_rules(dirs)
    loaded = {r.id for r in rs.rules}
    batch_gc()  # as `dcops detect scan` and `detect run` do; every contender runs under it
    print(f"calibration: 10M Python additions took {calibrate():.2f} CPU s "
          "(lower is a faster or less loaded core; compare runs by it); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        t = time.perf_counter()
        generate(path, events, rules, benign=_benign_windows if args.windows else _benign)
        size = path.stat().st_size
        print(f"generated {events:,} events ({size / 1e6:.0f} MB) for {len(rules)} SigmaHQ "
              f"{label} rules in {time.perf_counter() - t:.1f} s; dcops loads {len(loaded)}, "
              f"reports {len(rs.rejected)} with their reason (`dcops detect check`)")
        (wall, parse_cpu, n), best, shares = race_parse(path, dirs, args.repeat)
        print(f"baseline  orjson parse only : {n / wall:>10,.0f} events/s ({wall:.2f} s wall, "
              f"{parse_cpu:.2f} s CPU = {n / parse_cpu:,.0f} events per CPU-second)")
        wall, cpu, mine = best
        print(f"dcops     parse+detect+alert: {n / wall:>10,.0f} events/s ({wall:.2f} s wall, "
              f"{cpu:.2f} s CPU = {n / cpu:,.0f} events per CPU-second, one core), "
              f"{len(mine):,} alerts  [= --workers 1]")
        print(share_of_parse(shares, args.windows))
        wall, cpu, two = min(run_workers(path, dirs, 2) for _ in range(args.repeat))
        print(f"dcops     --workers 2       : {n / wall:>10,.0f} events/s ({wall:.2f} s wall, "
              f"{cpu:.2f} s CPU in 3 processes = {n / cpu:,.0f} events per CPU-second), "
              f"{len(two):,} alerts")
        check_agreement(mine, two, "dcops --workers 2")
        if not args.no_peer:
            wall, cpu, peer, unconv = min(run_sqlite(path, rules) for _ in range(args.repeat))
            print(f"sqlite    insert+queries    : {n / wall:>10,.0f} events/s ({wall:.2f} s wall, "
                  f"{cpu:.2f} s CPU = {n / cpu:,.0f} events per CPU-second), {len(peer):,} "
                  f"alerts, {len(unconv)} rule(s) not convertible")
            both = loaded - unconv  # compared on the rules both run
            if both != loaded or unconv:
                print(f"compared on the {len(both)} rules both run ({len(loaded - both)} loaded "
                      f"by dcops only, {len(unconv - loaded)} converted by neither)")
            check_agreement([a for a in mine if a[0] in both], [a for a in peer if a[0] in both],
                            "the SQLite backend")
        if not args.no_peer and args.windows:
            print("duckdb    not run on the Windows mix (its table would need a column for every "
                  "field of 2,000-odd rules; the Linux run compares it)")
        elif not args.no_peer:
            wall, cpu, duck, refused = min(run_duckdb(path, rules) for _ in range(args.repeat))
            print(f"duckdb    load+queries      : {n / wall:>10,.0f} events/s ({wall:.2f} s wall, "
                  f"{cpu:.2f} s CPU = {n / cpu:,.0f} events per CPU-second), {len(duck):,} "
                  f"alerts, {len(refused)} of {len(rules)} rule(s) it cannot run:")
            for reason, k in Counter(refused.values()).most_common():
                print(f"          {k:>3} {reason[:150]}")
            duckdb_agreement(path, rules, mine, duck, refused)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def check_agreement(mine: list[tuple[str, str]], peer: list[tuple[str, str]], who: str) -> None:
    """Both must raise exactly the same alerts (rule, event): exit 1 with the difference."""
    a, b = Counter(mine), Counter(peer)
    if a == b:
        print(f"agreement: dcops and {who} raised the same {len(mine):,} (rule, event) alerts")
        return
    only_dcops, only_peer = a - b, b - a
    print(f"DISAGREEMENT: dcops {len(mine):,} alerts, {who} {len(peer):,}; "
          f"{sum(only_dcops.values()):,} only in dcops, {sum(only_peer.values()):,} only in "
          f"{who}", file=sys.stderr)
    for label, diff in (("only dcops", only_dcops), ("only peer", only_peer)):
        for (rule, event), _ in sorted(diff.items())[:10]:
            print(f"  {label}: rule {rule} event {event}", file=sys.stderr)
    sys.exit(1)


def duckdb_agreement(
    path: Path, rules: list[SigmaRule], mine: list[tuple[str, str]],
    duck: list[tuple[str, str]], refused: dict[str, str],
) -> None:
    """Compare on the rules DuckDB ran; every difference must be SQL's NOT over NULL."""
    a = Counter(x for x in mine if x[0] not in refused)
    b = Counter(duck)
    ran = len(rules) - len(refused)
    if a == b:
        print(f"agreement: dcops and the DuckDB backend raised the same {len(duck):,} alerts on "
              f"the {ran} rules DuckDB runs")
        return
    diff = (a - b) + (b - a)
    differing = {r for r, _ in diff}
    by_rule: dict[str, set[str]] = {r: set() for r in differing}
    for r, e in a:
        if r in by_rule:
            by_rule[r].add(e)
    still = explain_duckdb(path, rules, by_rule)
    print(f"duckdb difference on the {ran} rules it runs: {sum((a - b).values()):,} alerts only "
          f"in dcops, {sum((b - a).values()):,} only in DuckDB, in {len(differing)} rule(s); "
          f"{len(differing) - len(still)} of them agree exactly once `NOT (x)` is read as "
          "Sigma means it (x on an absent field is false, SQL makes it NULL and drops the row)")
    if still:
        check_agreement([x for x in mine if x[0] in still], [x for x in duck if x[0] in still],
                        f"the DuckDB backend (rules {', '.join(sorted(still))})")


if __name__ == "__main__":
    main()
