"""Syslog framing: RFC 5424, RFC 3164 (BSD) and the ISO-timestamp file format rsyslog writes.

Every expression here runs in time linear in the line: anchored (`match`), bounded repetitions,
possessive quantifiers where a greedy run is followed by a character it cannot contain, and no
search whose candidates rescan the same text (find_bsd_time, _split_sd were rewritten for that).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

_PRI = re.compile(r"<(\d{1,3})>")
_R5424 = re.compile(
    r"(?P<ver>[1-9]\d{0,2}) (?P<ts>\S++) (?P<host>\S++) (?P<app>\S++) (?P<procid>\S++) "
    r"(?P<msgid>\S++) "
)
_BSD_TS = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ++(?P<day>\d{1,2})"
    r"(?: (?P<year>\d{4}))? (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?:? "
)
_ISO_TS = re.compile(
    r"(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) "
)
_TAG = re.compile(r"(?P<tag>[A-Za-z0-9_./@()-]{1,64}?)(?:\[(?P<pid>[^\]\s]{1,32})\])?: ?")
_TAG_NOCOLON = re.compile(r"(?P<tag>[A-Za-z0-9_.-]{1,32})(?:\[(?P<pid>\d{1,10})\])? ")
KNOWN_TAGS = frozenset(
    {
        "sshd",
        "sudo",
        "su",
        "cron",
        "CRON",
        "crond",
        "crontab",
        "useradd",
        "usermod",
        "userdel",
        "groupadd",
        "groupmod",
        "passwd",
        "chpasswd",
        "chage",
        "kernel",
        "audisp-syslog",
        "auditd",
        "systemd-logind",
        "login",
    }
)
# The common RFC 3164 line in one match: `<PRI>Mmm dd hh:mm:ss host tag[pid]: `. What it
# accepts, the general path below (PRI, _BSD_TS, _HOST, _TAG) splits the same way (the parser
# test holds the two to each other); anything else (a year, fractions, an IPv6 host, no tag...)
# takes the general path.
_FAST_3164 = re.compile(
    r"<(\d{1,3})>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ++(\d{1,2}) "
    r"(\d{2}:\d{2}:\d{2}) ([A-Za-z0-9_.-]{1,255}+) "
    r"([A-Za-z0-9_./@()-]{1,64}?)(?:\[([^\]\s]{1,32})\])?: ?"
)
_MONTH = timedelta(days=31)
_UNSET = datetime.min.replace(tzinfo=UTC)  # (a memo miss; None is a result: no such date)
# The BSD times of the lines parsed against one `now` (the receive time of one read): each
# second is converted once. Replaced, never cleared, when `now` changes: bounded by one read.
_WHEN_MEMO_MAX = 4096
_Memo = tuple[datetime | None, dict[str, datetime | None]]
_when_memo: list[_Memo] = [(None, {})]  # one pair, replaced whole
_HOST = re.compile(r"(?P<host>[A-Za-z0-9_.:-]{1,255}) ")
# Cisco's `host: *Mon DD ...`: the run of host characters that ends where the search stops
_HOST_RUN = re.compile(r"(?<![\w.-])[\w.-]++\Z")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# RFC 5424 STRUCTURED-DATA (what _split_sd's state machine accepts): anything up to the first
# `[` (escapes skip a character), then `[...]` elements whose quoted values may hold `]`.
_SD_BODY = r'(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*+")*+\]'
_SD = re.compile(r"(?:[^\[\\]|\\.)*+\[" + _SD_BODY + r"(?:\[" + _SD_BODY + ")*+", re.S)


@dataclass(slots=True)
class SyslogMessage:
    """One syslog message split into header fields and the free-text MSG part."""

    message: str
    timestamp: datetime | None = None
    hostname: str = ""
    app_name: str = ""
    procid: str = ""
    msgid: str = ""
    structured_data: str = ""
    facility: int | None = None
    severity: int | None = None
    format: str = "none"  # rfc5424, rfc3164, file, none


def _nil(v: str) -> str:
    return "" if v == "-" else v


def parse_iso(ts: str) -> datetime | None:
    """Parse an RFC 3339 timestamp; naive values are taken as UTC."""
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _bsd_time(m: re.Match[str], now: datetime) -> datetime | None:
    """A BSD timestamp has no year: take the one that puts it closest to `now`."""
    return _bsd_when(m["mon"], m["day"], m["year"], m["time"], now)


def _bsd_when(mon: str, day: str, year: str | None, hms: str, now: datetime) -> datetime | None:
    dt = _bsd_datetime(mon, day, year, hms, now.year)
    if dt is None or year:
        return dt
    if dt - now > _MONTH:
        dt = dt.replace(year=now.year - 1)
    return dt


@functools.lru_cache(maxsize=4096)  # a busy sender repeats its second: parse each one once
def _bsd_datetime(mon: str, day: str, year: str | None, hms: str, this_year: int
                  ) -> datetime | None:
    """The datetime of a BSD timestamp's parts (in `this_year` when it has none)."""
    try:
        h, mi, s = (int(x) for x in hms.split(":"))
        return datetime(int(year) if year else this_year, _MONTHS[mon], int(day), h, mi, s,
                        tzinfo=UTC)
    except ValueError:
        return None


def find_bsd_time(text: str, now: datetime) -> tuple[datetime | None, str]:
    """Find a BSD timestamp inside text (Cisco puts it after a sequence number and host).

    The same result as searching `(?:(?P<h>[A-Za-z][\\w.-]*): )?[*.]?` + the timestamp, without
    its quadratic retries inside long words: the first timestamp, then the host before it.
    """
    m = _BSD_TS.search(text)
    if not m:
        return None, ""
    end = m.start()
    if end and text[end - 1] in "*.":
        end -= 1
    host = ""
    if end >= 2 and text[end - 2 : end] == ": ":
        run = _HOST_RUN.search(text, 0, end - 2)
        letter = _ASCII_LETTER.search(text, run.start(), end - 2) if run else None
        if letter:
            host = text[letter.start() : end - 2]
    return _bsd_time(m, now), host


def _split_sd(rest: str) -> tuple[str, str]:
    """Split RFC 5424 STRUCTURED-DATA ('-' or [..][..]) from the MSG that follows it."""
    if rest.startswith("-"):
        return "", rest[2:] if rest.startswith("- ") else rest[1:]
    m = _SD.match(rest)
    if m is None or rest.startswith("[", m.end()):  # unclosed element or value: all SD
        return rest, ""
    return rest[: m.end()], rest[m.end() + 1 :]


def _tag(msg: SyslogMessage, rest: str) -> str:
    """Split `tag[pid]: text`; leave the text alone if there is no tag."""
    t = _TAG.match(rest)
    if t is None:  # rsyslog forwards RFC 5424 input as `host APP msg`, without the colon
        t = _TAG_NOCOLON.match(rest)
        if t is not None and t["tag"] not in KNOWN_TAGS:
            t = None
    if t:
        msg.app_name, msg.procid = t["tag"], t["pid"] or ""
        return rest[t.end() :]
    return rest


def parse_syslog(line: str, *, now: datetime | None = None) -> SyslogMessage:
    """Parse one syslog line; never raises, an unknown format keeps the whole line as MSG."""
    now = now or datetime.now(UTC)
    line = line.rstrip("\r\n\x00")
    f = _FAST_3164.match(line)
    if f is not None and (pri := int(f[1])) <= 191:
        _, mon, day, hms, host, tag, pid = f.groups()
        memo = _when_memo[0]
        if memo[0] is not now:  # (a pair: a thread with another `now` never reads this one's)
            memo = (now, {})
            _when_memo[0] = memo
        when = memo[1].get(mon + day + hms, _UNSET)
        if when is _UNSET:
            if len(memo[1]) >= _WHEN_MEMO_MAX:  # one `now` for a whole file: start afresh
                memo = (now, {})
                _when_memo[0] = memo
            when = memo[1][mon + day + hms] = _bsd_when(mon, day, None, hms, now)
        return SyslogMessage(
            message=line[f.end():], timestamp=when, hostname=host, app_name=tag,
            procid=pid or "", facility=pri >> 3, severity=pri & 7, format="rfc3164")
    return _parse_general(line, now)


def _parse_general(line: str, now: datetime) -> SyslogMessage:
    msg = SyslogMessage(message=line)
    rest = line
    p = _PRI.match(rest)
    if p and int(p[1]) <= 191:
        pri = int(p[1])
        msg.facility, msg.severity = pri >> 3, pri & 7
        rest = rest[p.end() :]
        r = _R5424.match(rest)
        if r:
            msg.format = "rfc5424"
            msg.timestamp = parse_iso(r["ts"]) if r["ts"] != "-" else None
            msg.hostname, msg.app_name = _nil(r["host"]), _nil(r["app"])
            msg.procid, msg.msgid = _nil(r["procid"]), _nil(r["msgid"])
            msg.structured_data, text = _split_sd(rest[r.end() :])
            msg.message = text.removeprefix("\ufeff")
            return msg
        msg.format = "rfc3164"
    b = _BSD_TS.match(rest)
    iso = None if b else _ISO_TS.match(rest)
    if b or iso:
        if msg.format == "none":
            msg.format = "file"
        msg.timestamp = _bsd_time(b, now) if b else parse_iso(iso["ts"]) if iso else None
        rest = rest[(b or iso).end() :] if (b or iso) else rest  # type: ignore[union-attr]
        h = _HOST.match(rest)
        if h and not h["host"].endswith(":") and not rest.startswith("%"):
            msg.hostname = h["host"]
            rest = rest[h.end() :]
    elif msg.format == "none":
        return msg
    msg.message = _tag(msg, rest)
    return msg
