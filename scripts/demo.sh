#!/usr/bin/env bash
# The whole xcoder pipeline on this machine's CPU, offline, in minutes:
#   synthesis from the shipped replay cache -> dual verification in the judge -> SFT/RL parquet + data card
#   -> SFT (ms-swift, tiny local model) -> RL (stock verl GRPO on CPU, judge reward; rl.backend=swift for
#   ms-swift GRPO) -> eval on the mini LCB sample
#   -> outputs/demo/report.md
#
#   bash scripts/demo.sh                       # installs the environment first if needed (scripts/setup.sh)
#   bash scripts/demo.sh run.name=demo2        # extra args are config overrides for `xcoder pipeline`
#   XCODER_SKIP_SETUP=1 bash scripts/demo.sh   # skip the setup check
#
# Rerunning is cheap: every stage skips the work it already finished.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${XCODER_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh   # idempotent: returns at once when .venv matches the requirements
fi
export HF_HUB_OFFLINE=1 MODELSCOPE_OFFLINE=1 VLLM_NO_USAGE_STATS=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

start=$(date +%s)
status=0
.venv/bin/python -m xcoder.cli pipeline experiment=demo "$@" || status=$?
elapsed=$(( $(date +%s) - start ))
report="$(.venv/bin/python -m xcoder.cli pipeline experiment=demo "$@" --cfg job | sed -n 's/^  report: //p' | head -n 1)"
case "$report" in /*) ;; *) report="$ROOT/$report" ;; esac
if [ "$status" -ne 0 ]; then
  echo "[demo] FAILED (exit $status) after ${elapsed}s; partial report: $report" >&2
  exit "$status"
fi
echo "[demo] done in ${elapsed}s"
echo "[demo] report: $report"
