"""More than one machine, on one machine: two Ray nodes started with `ray start` (head + worker)
share verify's judge work under `cluster=ray`, and an LLM stage spreads its requests over several
OpenAI-compatible endpoints. Hard timeouts everywhere: a misconfigured Ray hangs instead of failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
ADD = "a, b = map(int, input().split())\nprint(a + b)"
ADD2 = "import sys\nprint(sum(map(int, sys.stdin.read().split())))"


def _ray(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


@pytest.fixture()
def two_ray_nodes(tmp_path):
    from xcoder.synth.bench_scale import free_port

    port = free_port()
    temp = Path("/tmp") / f"xr{os.getpid()}"  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        _ray("start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
             f"--temp-dir={temp}", "--disable-usage-stats", env=env)
        _ray("start", f"--address=127.0.0.1:{port}", "--num-cpus=1", env=env)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", str(temp)], timeout=60)


def _import_cfg(tmp_path: Path, tasks: int, extra: list[str]):
    from xcoder.config import compose

    src = tmp_path / "problems.jsonl"
    with open(src, "w") as fh:
        for t in range(tasks):
            tests = [{"input": f"{t} {j}\n"} for j in range(6)]
            fh.write(json.dumps({"task_id": f"p{t}", "statement": "Print a+b.", "tests": tests,
                                 "candidates": [ADD, ADD2, ADD, ADD2]}) + "\n")
    return compose(["experiment=demo", f"run.output_dir={tmp_path}/run", f"synth.import.path={src}",
                    "synth.stages=[import,verify]", "synth.verify.golden.min_tests=3", *extra])


def test_cluster_ray_spreads_verify_judge_work_over_two_ray_start_nodes(tmp_path, two_ray_nodes):
    import ray

    from xcoder.synth.stage import run_stages

    cfg = _import_cfg(tmp_path, 24, ["cluster=ray", f"cluster.address={two_ray_nodes}",
                                     "synth.verify.tasks_per_judge_batch=24"])
    try:
        ray.init(address=two_ray_nodes, log_to_driver=False, logging_level="ERROR")
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        verify = run_stages(cfg)["stages"]["verify"]
    finally:
        ray.shutdown()
    assert verify["kept"] == 24
    per_node = verify["judge_jobs_per_node"]
    assert len(per_node) == 2 and all(n > 0 for n in per_node.values()), per_node
    assert sum(per_node.values()) == 24 * 4  # every candidate x task job ran exactly once


def test_an_llm_stage_spreads_requests_over_several_endpoints(tmp_path):
    from xcoder.config import compose
    from xcoder.llm.fake_server import FakeOpenAIServer
    from xcoder.synth import bench_scale
    from xcoder.synth.stage import run_stages

    subtrees = bench_scale.write_subtrees(tmp_path / "subtrees.parquet", 12)
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        for s in (a, b):
            s.state.responder = bench_scale.respond
        cfg = compose([f"run.output_dir={tmp_path}/run", f"synth.features.subtrees_parquet={subtrees}",
                       "synth.stages=[tasks]", f"llm.endpoints=[{a.url},{b.url}]", "llm.model=bench",
                       "llm.api_key_env=XCODER_TEST_KEY", "synth.tasks.style_cycle=[codeforces]"])
        os.environ["XCODER_TEST_KEY"] = "not-a-secret"
        try:
            tasks = run_stages(cfg)["stages"]["tasks"]
        finally:
            os.environ.pop("XCODER_TEST_KEY", None)
        served = (a.stats()["requests"], b.stats()["requests"])
    assert tasks["kept"] == 12 and sum(served) == 24  # stage 1 + stage 2 per subtree
    assert min(served) > 0, served
