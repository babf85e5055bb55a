#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults (see `dcops demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/dcops demo "$@"
