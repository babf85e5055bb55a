"""The campaign's figures per collector and in total, and its verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fuzzkit.ledger import Ledger
from fuzzkit.procs import Collector, sample_sum
from fuzzkit.verify import SpoolReport

MIB = 1024.0


@dataclass
class Outcome:
    """Everything measured about one collector."""

    collector: Collector
    paths: list[str]
    spool: SpoolReport | None = None
    jsonl: Counter[tuple[str, int]] | None = None
    alive_at_end: bool = True
    exit_code: int | None = None
    died_code: int | None = None
    shutdown_s: float = 0.0
    killed: bool = False
    rss_after_kib: int = 0
    hwm_kib: int = 0
    cpu_s: float = 0.0
    metrics: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def canary_figures(o: Outcome, ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per path: sent, stored, lost, duplicates, kernel-dropped, dead-lettered, (JSONL)."""
    out: dict[str, dict[str, int]] = {}
    found = o.spool.found if o.spool else Counter()
    for p in o.paths:
        sent = ledger.sent[p]
        kd = ledger.kernel_dropped[p]
        stored = sum(1 for n in sent if found[(p, n)] >= 1)
        row = {"sent": len(sent), "stored": stored,
               "lost": sum(1 for n in sent if not found[(p, n)] and n not in kd),
               "duplicates": sum(found[(p, n)] - 1 for n in sent if found[(p, n)] > 1),
               "kernel_dropped": sum(1 for n in kd if not found[(p, n)]),
               "dead_lettered": sum(1 for n in sent if o.spool and o.spool.dead_canaries[(p, n)]),
               "not_sent": len(ledger.unsendable[p])}
        if o.jsonl is not None:
            row["jsonl_stored"] = sum(1 for n in sent if o.jsonl[(p, n)] >= 1)
            row["jsonl_lost"] = sum(1 for n in sent if not o.jsonl[(p, n)] and n not in kd)
        out[p] = row
    return out


def found_in(o: Outcome, path: str, n: int) -> bool:
    """Canary `n` of `path` is in the spool."""
    return bool(o.spool and o.spool.found[(path, n)])


def dropped_by_reason(metrics: list[tuple[str, dict[str, str], float]]) -> dict[str, float]:
    """Non-zero dcops_intake_dropped_total samples, `source/reason` -> count."""
    return {f"{lab.get('source')}/{lab.get('reason')}": v for n, lab, v in metrics
            if n == "dcops_intake_dropped_total" and v}


def other_counters(metrics: list[tuple[str, dict[str, str], float]]) -> dict[str, float]:
    """Received / stored / truncated / sink errors per source, dead letters, trap refusals."""
    out: dict[str, float] = {}
    for n, lab, v in metrics:
        if n in ("dcops_intake_received_total", "dcops_intake_stored_total",
                 "dcops_intake_truncated_total", "dcops_intake_sink_errors_total"):
            out[f"{n.removeprefix('dcops_intake_').removesuffix('_total')}/{lab.get('source')}"] = v
        elif n.startswith("dcops_syslog_") and n.endswith("_total") and v:
            out[n.removeprefix("dcops_syslog_").removesuffix("_total")] = v
        elif n in ("dcops_snmp_trap_refused_total", "dcops_snmp_trap_packets_total") and v:
            key = lab.get("reason") or lab.get("outcome")
            out[f"{n.removeprefix('dcops_snmp_').removesuffix('_total')}/{key}"] = v
    dl = sample_sum(metrics, "dcops_spool_dead_letters")
    if dl is not None:
        out["spool_dead_letters"] = dl
    return out


def verdict(outcomes: list[Outcome], ledger: Ledger, rss_bound_mib: float,
            shutdown_bound: float) -> list[str]:
    """Why the campaign failed (empty: it passed)."""
    bad: list[str] = []
    for o in outcomes:
        c = o.collector
        for p, row in canary_figures(o, ledger).items():
            if row["lost"]:
                bad.append(f"{p}: {row['lost']} canaries lost")
            if row["duplicates"]:
                bad.append(f"{p}: {row['duplicates']} duplicate canaries")
            if row["kernel_dropped"]:
                bad.append(f"{p}: {row['kernel_dropped']} canaries dropped by the kernel "
                           "(pacing too fast for this machine)")
            if row["not_sent"]:
                bad.append(f"{p}: {row['not_sent']} canaries could not be sent (the collector "
                           "closed every new connection: see connections_refused)")
            if row.get("jsonl_lost"):
                bad.append(f"{p}: {row['jsonl_lost']} canaries missing from the JSONL sink")
        if not o.alive_at_end:
            bad.append(f"{c.name}: process died (exit code {o.died_code})")
        growth = (o.rss_after_kib - c.rss_before_kib) / MIB
        if growth > rss_bound_mib:
            bad.append(f"{c.name}: RSS grew {growth:.0f} MiB (bound {rss_bound_mib:.0f})")
        if o.killed or o.shutdown_s >= shutdown_bound:
            bad.append(f"{c.name}: SIGTERM shutdown took {o.shutdown_s:.1f} s"
                       + (" and it had to be SIGKILLed" if o.killed else ""))
        if o.spool and o.spool.unreadable:
            bad.append(f"{c.name}: {len(o.spool.unreadable)} spool rows unreadable "
                       f"({o.spool.error})")
        if "informs_acked" in o.extra and o.extra["informs_acked"] < o.extra["informs_sent"]:
            bad.append(f"{c.name}: {o.extra['informs_sent'] - o.extra['informs_acked']} inform "
                       "canaries never acknowledged")
    return bad


def render(outcomes: list[Outcome], ledger: Ledger, wall: float) -> str:
    """Human-readable figures, one block per collector and a total."""
    lines: list[str] = []
    tot_h = tot_sent = tot_stored = tot_lost = tot_dup = 0
    for o in outcomes:
        c = o.collector
        h = ledger.hostile_total(c.name)
        tot_h += h
        kinds = Counter({k.split("/", 1)[1]: v for k, v in ledger.hostile.items()
                         if k.startswith(c.name + "/")})
        lines.append(f"== {c.name}: dcops collect {' '.join(c.args[:1])} (pid {c.pid}) ==")
        lines.append(f"  hostile inputs sent: {h:,} in {len(kinds)} kinds; most: " + ", ".join(
            f"{k} {v:,}" for k, v in kinds.most_common(6)))
        for p, row in canary_figures(o, ledger).items():
            tot_sent += row["sent"]
            tot_stored += row["stored"]
            tot_lost += row["lost"]
            tot_dup += row["duplicates"]
            extra = (f", JSONL {row['jsonl_stored']}/{row['sent']}" if "jsonl_stored" in row
                     else "")
            lines.append(f"  canaries {p}: stored {row['stored']:,} / sent {row['sent']:,}; "
                         f"lost {row['lost']}, duplicates {row['duplicates']}, kernel-dropped "
                         f"{row['kernel_dropped']}, dead-lettered {row['dead_lettered']}, "
                         f"not sent {row['not_sent']}{extra}")
            lost = [n for n in ledger.sent[p] if not found_in(o, p, n)
                    and n not in ledger.kernel_dropped[p]][:5]
            for n in lost:
                lines.append(f"    lost canary {p} #{n}: sent on "
                             f"{ledger.where.get((p, n), 'its path')}")
        for k, v in o.extra.items():
            lines.append(f"  {k}: {v}")
        state = "alive" if o.alive_at_end else f"DIED (exit code {o.died_code})"
        lines.append(f"  process: {state}; SIGTERM -> exit code {o.exit_code} in "
                     f"{o.shutdown_s:.2f} s" + (" (SIGKILLed)" if o.killed else ""))
        growth = (o.rss_after_kib - c.rss_before_kib) / MIB
        lines.append(f"  RSS: before {c.rss_before_kib / MIB:.1f} MiB, after "
                     f"{o.rss_after_kib / MIB:.1f} MiB (growth {growth:+.1f} MiB), peak "
                     f"{o.hwm_kib / MIB:.1f} MiB")
        per = o.cpu_s / h * 1e6 if h else 0.0
        lines.append(f"  CPU: {o.cpu_s:.1f} s for {h:,} hostile inputs = {per:,.0f} us each "
                     "(canaries and idle polling included)")
        if o.spool:
            lines.append(f"  spool: {o.spool.events:,} events readable, {o.spool.dead_letters:,} "
                         f"dead letters, {len(o.spool.unreadable)} unreadable rows")
        drops = dropped_by_reason(o.metrics)
        lines.append("  metrics dropped by reason: " + (", ".join(
            f"{k} {v:,.0f}" for k, v in sorted(drops.items())) or
            ("none" if o.metrics else "no /metrics (no --metrics-listen on this command)")))
        other = other_counters(o.metrics)
        if other:
            lines.append("  metrics: " + ", ".join(f"{k} {v:,.0f}" for k, v in other.items()))
    lines.append(f"== total: {tot_h:,} hostile inputs in {wall:.0f} s; canaries stored "
                 f"{tot_stored:,} / sent {tot_sent:,}; lost {tot_lost}, duplicates {tot_dup} ==")
    return "\n".join(lines)
