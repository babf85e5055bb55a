"""Evaluate one check of the catalogue against one subject's fact."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dcops.compliance.catalogue import Check


@dataclass(frozen=True, slots=True)
class Outcome:
    """pass | fail | missing | n/a, and what was observed (for the report)."""

    result: str
    observed: Any = None
    detail: str = ""


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        got = float(value if isinstance(value, int | float) else str(value))
    except ValueError:
        return None
    return got if math.isfinite(got) else None


def compare(op: str, observed: Any, expected: Any,  # noqa: PLR0912 - one branch per op
            declared: dict[str, str] | None = None) -> Outcome:
    """Apply `op`; the outcome explains a failure in terms of what was seen.

    `declared` (within_baseline): values the subject itself declares on top of `expected`, each
    with where it was declared; the detail names the source of every allowed extra value seen.
    """
    ok: bool
    detail = ""
    if op in {"le", "ge", "lt", "gt", "between"}:
        if observed is None:  # "never" (no event, no snapshot): fails every bound
            return Outcome("fail", None, "never")
        got = _num(observed)
        if got is None:
            return Outcome("fail", observed, "not a number")
        if op == "between":
            low, high = (_num(v) for v in expected)
            ok = low is not None and high is not None and low <= got <= high
        else:
            want = _num(expected)
            ok = want is not None and {"le": got <= want, "ge": got >= want,
                                       "lt": got < want, "gt": got > want}[op]
    elif op == "eq":
        ok = str(observed).lower() == str(expected).lower()
    elif op == "ne":
        ok = str(observed).lower() != str(expected).lower()
    elif op == "true":
        ok = observed is True
    elif op == "false":
        ok = observed is False
    elif op == "empty":
        ok = not observed
        if not ok:
            detail = ", ".join(map(str, observed)) if isinstance(observed, list) else str(observed)
    elif op == "nonempty":
        ok = bool(observed)
    elif op == "superset":
        missing = sorted(set(expected) - set(observed or []))
        ok = not missing
        detail = f"missing: {', '.join(missing)}" if missing else ""
    elif op == "within_baseline":
        declared = declared or {}
        seen = set(observed or [])
        extra = sorted(seen - set(expected) - set(declared))
        ok = not extra
        used = [f"{v} ({declared[v]})" for v in sorted(seen & set(declared) - set(expected))]
        detail = "; ".join([*([f"not in baseline: {', '.join(extra)}"] if extra else []),
                            *([f"declared: {'; '.join(used)}"] if used else [])])
    elif op == "info":  # read and shown beside the judged checks, never part of the verdict
        return Outcome("n/a", observed, "reported, not judged")
    else:  # pragma: no cover - the catalogue loader rejects unknown ops
        raise ValueError(op)
    return Outcome("pass" if ok else "fail", observed, detail)


def expected_text(check: Check, value: Any) -> str:
    """The expectation in words, e.g. `<= 5`, `== no`, `empty`."""
    symbols = {"eq": "==", "ne": "!=", "le": "<=", "ge": ">=", "lt": "<", "gt": ">"}
    if check.op in symbols:
        return f"{symbols[check.op]} {value}"
    if check.op == "between":
        return f"between {value[0]} and {value[1]}"
    if check.op in {"superset", "within_baseline"}:
        rel = "includes" if check.op == "superset" else "within"
        return f"{rel} {', '.join(map(str, value))}"
    return {"true": "yes", "false": "no", "empty": "none", "nonempty": "present",
            "info": "reported, not judged"}[check.op]
