"""Render templates of a role for every host of an inventory group, by ansible-playbook itself.

The role's own defaults, the inventory and Ansible's variable precedence decide the output; nothing
connects to the hosts (ansible_connection=local, files written under `out/<host>/`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PLAY = """\
- name: Render templates of a role with its defaults
  hosts: "{{ target }}"
  gather_facts: false
  roles:
    - role: render_role
"""


def render(inventory: Path, role: str, templates: list[str], target: str, out: Path,
           extra: dict[str, object] | None = None) -> dict[str, dict[str, str]]:
    """{host: {template: text}} for every host of `target` (a group or host pattern)."""
    work = out / ".render"
    rdir = work / "roles" / "render_role"
    (rdir / "defaults").mkdir(parents=True, exist_ok=True)
    (rdir / "tasks").mkdir(exist_ok=True)
    source = ROOT / "playbooks" / "roles" / role
    (rdir / "defaults" / "main.yml").write_text(
        (source / "defaults" / "main.yml").read_text(encoding="utf-8"), encoding="utf-8")
    tasks = [{"name": "Host directory", "delegate_to": "localhost",
              "ansible.builtin.file": {"path": f"{out}/{{{{ inventory_hostname }}}}",
                                       "state": "directory", "mode": "0700"}}]
    for t in templates:
        tasks.append({"name": f"Render {t}", "delegate_to": "localhost",
                      "ansible.builtin.template": {
                          "src": str(source / "templates" / t),
                          "dest": (f"{out}/{{{{ inventory_hostname }}}}/"
                                   f"{Path(t).name.removesuffix('.j2')}"),
                          "mode": "0600"}})
    (rdir / "tasks" / "main.yml").write_text(yaml.safe_dump(tasks), encoding="utf-8")
    (work / "play.yml").write_text(PLAY, encoding="utf-8")
    (work / "extra.yml").write_text(yaml.safe_dump(extra or {}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(work / "roles"), "DCOPS_CHANGE_DISABLE": "1"}
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                          str(work / "play.yml"),
                          "-e", f"target={target}", "-e", "ansible_connection=local",
                          "-e", f"ansible_python_interpreter={sys.executable}",
                          "-e", f"@{work / 'extra.yml'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return {h.name: {p.name: p.read_text(encoding="utf-8") for p in h.iterdir()}
            for h in sorted(out.iterdir()) if h.is_dir() and h.name != ".render"}
