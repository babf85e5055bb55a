"""Build dcops's C extensions in place (`make setup` runs this; idempotent).

One extension today, `dcops.detect._fastread` (the detection reader's common case). It is built
with the interpreter's own compiler and flags (sysconfig), next to its source, so the editable
install and PYTHONPATH=src both import it. A module is rebuilt when its source or this script is
newer than it, and is replaced atomically (a running scan keeps the file it mapped).

Exit status 1 with the compiler's output when a build fails: the tests then fail on the missing
module (tests/unit/detect/test_fastread.py), they do not skip it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = {"dcops.detect._fastread": ROOT / "src/dcops/detect/_fastread.c"}
# the interpreter's -O3 -Wall, plus the warnings a C reader of foreign objects should not have
WARN = ["-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Werror"]


def target(name: str) -> Path:
    """Where the built module of `name` goes (beside its source, with the ABI suffix)."""
    src = EXTENSIONS[name]
    return src.with_name(name.rsplit(".", 1)[1] + sysconfig.get_config_var("EXT_SUFFIX"))


def build(name: str, force: bool = False) -> bool:
    """Compile one extension when it is out of date; True when it was built."""
    src, out = EXTENSIONS[name], target(name)
    newest = max(src.stat().st_mtime, Path(__file__).stat().st_mtime)
    if not force and out.exists() and out.stat().st_mtime >= newest:
        return False
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    cflags = shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    ldshared = shlex.split(sysconfig.get_config_var("LDSHARED") or "cc -shared")
    include = sysconfig.get_paths()["include"]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    obj = tmp.with_suffix(".o")
    try:
        subprocess.run([*cc, *cflags, *WARN, "-fPIC", f"-I{include}", "-c", str(src),
                        "-o", str(obj)], check=True)
        subprocess.run([*ldshared, str(obj), "-o", str(tmp)], check=True)
        tmp.replace(out)
    finally:
        obj.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return True


def main() -> int:
    force = "--force" in sys.argv[1:]
    for name, src in EXTENSIONS.items():
        try:
            built = build(name, force)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"build_ext: {name} from {src}: {exc}", file=sys.stderr)
            return 1
        if built:
            print(f"build_ext: built {target(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
