#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults. Grows as the toolkit grows.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m dcops.demo "$@"
