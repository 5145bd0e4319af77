"""Ray fan-out of JudgeJobs: one Judge actor per node, chunked, results re-assembled in job order.

One local Ray session for the module (`ray.init(num_cpus=2)`: never more CPUs than the machine has).
"""

from __future__ import annotations

import random

import pytest

from xcoder.judge import JudgeJob, JudgeTest, Limits, Program, Verdict

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")

LIMITS = Limits(time_s=5, memory_mb=512)


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def _jobs(n: int, seed: int = 0) -> tuple[list[JudgeJob], list[list[Verdict]]]:
    """Jobs with a known verdict per test: program j prints j*k for input k, some tests expect wrong
    values, some programs crash, a few have a syntax error."""
    rng = random.Random(seed)
    jobs, expected = [], []
    for j in range(n):
        flavour = rng.choice(["ok", "ok", "ok", "crash", "syntax"])
        if flavour == "syntax":
            code = "def broken(:\n"
        elif flavour == "crash":
            code = f"k = int(input())\nif k % 2: raise RuntimeError('odd')\nprint({j} * k)\n"
        else:
            code = f"k = int(input())\nprint({j} * k)\n"
        tests, verdicts = [], []
        for k in range(rng.randint(1, 4)):
            right = rng.random() < 0.7
            tests.append(JudgeTest(input=f"{k}\n", output=str(j * k if right else j * k + 1)))
            if flavour == "syntax":
                verdicts.append(Verdict.CE)
            elif flavour == "crash" and k % 2:
                verdicts.append(Verdict.RE)
            else:
                verdicts.append(Verdict.AC if right else Verdict.WA)
        jobs.append(JudgeJob(Program(code), tests, compare="strip", limits=LIMITS))
        expected.append(verdicts)
    return jobs, expected


def test_fanout_reassembles_in_job_and_test_order(ray_session):
    from xcoder.judge.ray_fanout import RayJudgePool

    jobs, expected = _jobs(40)
    # two actors on the one local node so chunks really interleave across actors
    with RayJudgePool(workers=1, chunk_size=3, inflight_per_actor=2, actors_per_node=2) as pool:
        assert pool.num_actors == 2
        info = pool.info()
        assert len({i["pid"] for i in info}) == 2 and all(i["workers"] == 1 for i in info)
        results = pool.run_many(jobs)
    assert len(results) == len(jobs)
    for j, (res, want) in enumerate(zip(results, expected)):
        assert [r.index for r in res] == list(range(len(want))), j
        assert [r.verdict for r in res] == want, (j, [r.message for r in res])
    assert results[0][0].verdict in (Verdict.AC, Verdict.WA, Verdict.RE, Verdict.CE)
    assert pool.failed_chunks == 0


def test_dead_actor_chunks_are_resent_not_lost(ray_session, caplog):
    from xcoder.judge.ray_fanout import RayJudgePool

    caplog.set_level("WARNING", logger="xcoder.judge.ray_fanout")
    jobs, expected = _jobs(12, seed=1)
    with RayJudgePool(workers=1, chunk_size=2, actors_per_node=2) as pool:
        ray.kill(pool._actors[0], no_restart=True)  # a node lost before/while work is sent to it
        results = pool.run_many(jobs)
        assert [[r.verdict for r in res] for res in results] == expected
        assert pool.failed_chunks == 0
    assert "re-sending" in caplog.text  # the dead actor's chunks really went elsewhere


def test_pool_needs_a_ray_session_or_says_so(monkeypatch):
    from xcoder.judge.ray_fanout import RayJudgePool

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="ray.init"):
        RayJudgePool()


def test_cluster_ray_config_gives_a_ray_pool_and_local_gives_a_judge(ray_session):
    from xcoder.config import compose
    from xcoder.judge import Judge
    from xcoder.judge.factory import judge_for_cluster
    from xcoder.judge.ray_fanout import RayJudgePool

    jobs, expected = _jobs(6, seed=2)
    with judge_for_cluster(compose(["cluster=ray", "judge.workers=1"])) as pool:
        assert isinstance(pool, RayJudgePool) and pool.num_actors == 1
        assert [[r.verdict for r in res] for res in pool.run_many(jobs)] == expected
    with judge_for_cluster(compose(["cluster=local", "judge.workers=1"])) as local:
        assert isinstance(local, Judge)
        assert [[r.verdict for r in res] for res in local.run_many(jobs)] == expected
