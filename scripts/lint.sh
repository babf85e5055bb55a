#!/usr/bin/env bash
# Every linter CI runs: ruff, mypy --strict on src/, import-linter, ansible-lint (production profile).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\033[1;34m[lint]\033[0m %s\n' "$*"; }
step "ruff"; ruff check .
step "mypy --strict src/"; mypy
step "import-linter"; lint-imports
if compgen -G "playbooks/*.yml" >/dev/null && [ -n "$(ls playbooks/roles 2>/dev/null)" ]; then
  step "ansible-lint (production profile)"
  ANSIBLE_CONFIG="$PWD/ansible.cfg" ansible-lint --profile production --offline playbooks/
fi
