"""The CLI's one error path: every failure becomes one line on stderr and a non-zero exit code.

Exit codes: 0 done; 1 an expected failure (DcopsError, a missing or unreadable file, a YAML
syntax error, a refused connection); 2 a bad command line (unknown option, a value outside its
choices or range); 3 partial results (`audit run` with some hosts unreachable); 70 a dcops bug;
130 interrupted. `dcops --debug ...` or DCOPS_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from dcops.errors import DcopsError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

#: Loggers of libraries that log tracebacks of failures dcops reports itself (paramiko logs one
#: per unreachable host; dcops notes the host and its error instead; pyHanko logs a traceback
#: for every certificate path it cannot build, which `audit verify` reports as one line).
QUIET_LOGGERS = ("paramiko", "invoke", "fabric", "pyhanko", "pyhanko_certvalidator")

_debug = False


def set_debug(on: bool) -> None:
    """Show tracebacks, and the libraries' own logs of failures (the global --debug option)."""
    global _debug  # noqa: PLW0603 - one flag per run, set by the root callback
    _debug = on
    _quiet_libraries(not debug_enabled())


def debug_enabled() -> bool:
    """--debug was given, or DCOPS_DEBUG is set to something other than 0/empty."""
    return _debug or os.environ.get("DCOPS_DEBUG", "") not in ("", "0")


def _quiet_libraries(quiet: bool) -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())  # no "last resort" printing when quiet
        logger.propagate = not quiet


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        what = "no such file or directory (expected an existing path)"
    elif isinstance(exc, PermissionError):
        what = "permission denied (expected a path this user may read/write)"
    elif isinstance(exc, IsADirectoryError):
        what = "a directory (expected a file)"
    elif isinstance(exc, NotADirectoryError):
        what = "not a directory (expected a directory)"
    elif exc.errno == errno.EADDRINUSE:
        what = "address already in use (expected a free port)"
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


def _yaml_message(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    if mark is None:
        return f"YAML syntax error: {problem}"
    return f"{mark.name}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {problem}"


def _usage_message(exc: typer.TyperException) -> str:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = message.replace("Value error, ", "")  # typer's coercion prefix
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{ctx.command_path}: {message} (see {ctx.command_path} --help)"


def _interrupted(_exc: BaseException) -> str:
    return "interrupted / đã dừng"


def _port_overflow(exc: BaseException) -> str:
    return f"{exc} (expected a port number 0-65535)"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one line a user sees for `exc`, and the exit code."""
    import yaml

    if isinstance(exc, typer.TyperException):
        return _usage_message(exc), int(getattr(exc, "exit_code", EXIT_USAGE))
    known: list[tuple[type[BaseException] | tuple[type[BaseException], ...],
                      Callable[[Any], str], int]] = [
        (DcopsError, str, EXIT_ERROR),
        (yaml.YAMLError, _yaml_message, EXIT_ERROR),
        (OSError, _os_message, EXIT_ERROR),
        ((KeyboardInterrupt, typer.Abort), _interrupted, EXIT_INTERRUPTED),
    ]
    if "port" in str(exc):  # socket.bind() of a port above 65535
        known.append((OverflowError, _port_overflow, EXIT_ERROR))
    for kind, message, code in known:
        if isinstance(exc, kind):
            return message(exc), code
    return (f"unexpected {type(exc).__name__}: {exc} (a dcops bug: run again with "
            f"`dcops --debug ...` or DCOPS_DEBUG=1 and report the traceback)", EXIT_BUG)


def _print_error(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}",
                                               highlight=False)


def run(app: Callable[..., Any], argv: Sequence[str] | None = None) -> int:
    """Run the typer `app` on argv; return the exit code after printing any failure once."""
    set_debug(False)  # until the root callback reads --debug
    try:
        result = app(args=list(sys.argv[1:] if argv is None else argv), prog_name="dcops",
                     standalone_mode=False)
    except SystemExit as exc:  # sys.exit() in a command: its code stands
        if isinstance(exc.code, str):
            _print_error(exc.code)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # the one place that turns failures into lines
        if type(exc).__name__ == "NoArgsIsHelpError":  # help printed, as click does standalone
            return int(getattr(exc, "exit_code", EXIT_USAGE))
        message, code = describe(exc)
        if debug_enabled() and not isinstance(exc, typer.TyperException):  # not for usage
            traceback.print_exception(exc, file=sys.stderr)
        sys.stdout.flush()
        _print_error(message)
        return code
    # standalone_mode=False returns typer.Exit's code, or the command's own return value
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
