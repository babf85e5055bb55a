"""The real entry point (pulumi/__main__.py + config.py + the inventory) and the stack files.

The program runs in a subprocess (its modules are called `config` and `components`, as Pulumi
runs them) under mocks, with the config values of Pulumi.<stack>.yaml.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dcops.iac import find_program_dir

PROGRAM = find_program_dir()
EXAMPLE_PASSPHRASE = "dcops-EXAMPLE-ONLY"
SECRET_WORDS = ("psk", "password", "secret", "token", "key")

RUNNER = r"""
import json, runpy, sys
import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

stack, config = sys.argv[1], json.loads(sys.argv[2])
seen = []

class M(pulumi.runtime.Mocks):
    def new_resource(self, args):
        if args.custom:
            seen.append((args.typ, args.name, args.inputs))
        return f"{args.name}-id", args.inputs
    def call(self, args):
        return {"id": "ext-net-uuid", "userId": "u1", "name": args.args.get("name")}

pulumi.runtime.set_mocks(M(), project="dcops", stack=stack, preview=True)
for key, value in config.items():
    pulumi.runtime.set_config(key, value)
sys.path.insert(0, ".")
_sync_await(run_pulumi_func(lambda: runpy.run_path("__main__.py", run_name="__main__")))
conns = [i for t, n, i in seen if t.endswith("SiteConnection")]
routers = [i for t, n, i in seen if t.endswith("router:Router")]
print(json.dumps({"count": len(seen), "connections": len(conns),
                  "psk_set": all(c.get("psk") for c in conns),
                  "gateways": sorted({r.get("externalNetworkId", "") for r in routers})}))
"""


def _stack(stack: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROGRAM / f"Pulumi.{stack}.yaml").read_text("utf-8"))
    return data


def _decrypt(key: bytes, value: str) -> str:
    version, nonce, ct = value.split(":")
    assert version == "v1"
    return AESGCM(key).decrypt(base64.b64decode(nonce), base64.b64decode(ct), None).decode()


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_secrets_are_secure_values_that_decrypt(stack: str) -> None:
    data = _stack(stack)
    for key, value in data["config"].items():
        if any(word in key.lower() for word in SECRET_WORDS):
            assert isinstance(value, dict) and set(value) == {"secure"}, key
    _, salt, state = data["encryptionsalt"].split(":", 2)
    key = hashlib.pbkdf2_hmac("sha256", EXAMPLE_PASSPHRASE.encode(), base64.b64decode(salt),
                              1_000_000, 32)
    assert _decrypt(key, state) == "pulumi"  # what `pulumi` checks the passphrase against
    assert _decrypt(key, data["config"]["dcops:vpnPsk"]["secure"]).startswith("EXAMPLE-ONLY-")


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_main_program_runs_from_the_inventory(stack: str) -> None:
    config = {k: v for k, v in _stack(stack)["config"].items() if not isinstance(v, dict)}
    config["dcops:vpnPsk"] = "test-psk"
    run = subprocess.run([sys.executable, "-c", RUNNER, stack, json.dumps(config)],
                         cwd=PROGRAM, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["count"] > 600 and out["connections"] == 96  # the other DC + 95 communes
    assert out["psk_set"] and "ext-net-uuid" in out["gateways"]
