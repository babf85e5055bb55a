"""Type stub of the compiled reader (_fastread.c)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from dcops.model.event import Event, LogSource

def setup(
    event: type[Event],
    slow: Callable[..., Event],
    ls_cache: dict[tuple[Any, Any, Any], LogSource],
    empty_ls: LogSource,
    fromisoformat: Callable[[str], datetime],
    aware: Callable[[datetime], datetime],
    /,
) -> None: ...
def event_from_obj(obj: dict[str, Any], line: bytes = ..., /) -> Event: ...
def memo_or(
    fields: list[dict[str, Any]],
    name: str,
    memo: dict[Any, int],
    gates: Callable[[Any], int],
    hits: list[int],
    /,
) -> None: ...
