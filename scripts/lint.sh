#!/usr/bin/env bash
# Lint: ruff (pinned in requirements/cpu.txt; rules in pyproject.toml). CI runs this before the tests.
# Extra args go to `ruff check`, e.g. `bash scripts/lint.sh --fix` (never `ruff format`: no mass reformatting).
set -euo pipefail
cd "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -x .venv/bin/ruff ] || bash scripts/setup.sh
exec .venv/bin/ruff check "$@" .
