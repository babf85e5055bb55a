"""`pulumi up` refuses the example: an inventory that declares itself an example, or a stack sealed
with the published passphrase; a preview of the same stack only warns.

The real entry point (pulumi/__main__.py + config.py) runs in a subprocess under mocks, as in
test_stack_files.py, once as a preview and once as an update.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from dcops.iac import find_program_dir

PROGRAM = find_program_dir()

RUNNER = r"""
import json, runpy, sys
import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

stack, config, preview = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "preview"
created = []

class M(pulumi.runtime.Mocks):
    def new_resource(self, args):
        created.append(args.name)
        return f"{args.name}-id", args.inputs
    def call(self, args):
        return {"id": "ext-net-uuid", "name": args.args.get("name")}

pulumi.runtime.set_mocks(M(), project="dcops", stack=stack, preview=preview)
for key, value in config.items():
    pulumi.runtime.set_config(key, value)
sys.path.insert(0, ".")
try:
    _sync_await(run_pulumi_func(lambda: runpy.run_path("__main__.py", run_name="__main__")))
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "created": len(created)}))
    sys.exit(3)
print(json.dumps({"error": None, "created": len(created)}))
"""


def _run(stack: str, mode: str) -> tuple[int, dict[str, Any], str]:
    data = yaml.safe_load((PROGRAM / f"Pulumi.{stack}.yaml").read_text("utf-8"))
    config = {k: v for k, v in data["config"].items() if not isinstance(v, dict)}
    config["dcops:vpnPsk"] = "test-psk"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    proc = subprocess.run([sys.executable, "-c", RUNNER, stack, json.dumps(config), mode],
                          cwd=PROGRAM, capture_output=True, text=True, timeout=300, check=False,
                          env=env)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    return proc.returncode, json.loads(lines[-1]), proc.stdout + proc.stderr


@pytest.mark.parametrize("stack", ["primary"])
def test_up_refuses_the_example_stack_and_inventory(stack: str) -> None:
    rc, out, _ = _run(stack, "update")
    assert rc == 3, out
    assert out["created"] == 0  # refused before the first resource
    error = out["error"]
    assert error.startswith(f"ExampleSecretError: Pulumi.{stack}.yaml: refusing `pulumi up`: ")
    assert "the inventory declares itself an example (dcops_example: true)" in error
    assert f"encryptionsalt (Pulumi.{stack}.yaml:7): stack key sealed with the example" in error


def test_preview_of_the_example_only_warns() -> None:
    rc, out, text = _run("backup", "preview")
    assert rc == 0 and out["error"] is None and out["created"] > 200
    assert "`pulumi up` refuses this stack" in text
