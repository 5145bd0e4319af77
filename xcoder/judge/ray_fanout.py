"""Fan large batches of JudgeJobs out over a Ray cluster: one `Judge` actor per node.

Why Ray and nothing home-made: synthesis verification on a cluster already runs under Ray (verl
does too), and Ray gives placement, retries and object transport. Each node runs ONE judge actor
that owns all of that node's cores (the judge forks its own sandboxed workers), so the judge never
competes with itself on a node. Jobs are cut into chunks, each actor keeps a couple of chunks in
flight (pipelining hides transport latency), and results are re-assembled in job order.

`RayJudgePool.run_many` has the signature of `Judge.run_many`, so callers can take either
(`cluster=ray` in synthesis verification). The pool needs an initialised Ray (`ray.init(...)`);
it never starts a cluster itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from xcoder.judge.types import TestResult, Verdict

logger = logging.getLogger(__name__)


class _JudgeActor:
    """Holds one Judge for the lifetime of the actor (worker start-up is paid once per node)."""

    def __init__(self, workers: int, isolation: str) -> None:
        import ray

        from xcoder.judge import Judge

        self._judge = Judge(workers=workers, isolation=isolation)
        self._node_id = ray.get_runtime_context().get_node_id()

    def run_many(self, jobs: list[Any]) -> list[list[TestResult]]:
        return self._judge.run_many(jobs)

    def info(self) -> dict[str, Any]:
        import os

        return {
            "node_id": self._node_id,
            "pid": os.getpid(),
            "workers": getattr(self._judge, "workers", None),
            "isolation": str(getattr(self._judge, "isolation", "unknown")),
        }

    def close(self) -> None:
        self._judge.close()


def _sandbox_error_results(job: Any, message: str) -> list[TestResult]:
    return [TestResult(index=i, verdict=Verdict.SE, message=message) for i in range(len(job.tests))]


class RayJudgePool:
    """One judge actor per alive Ray node (or `actors_per_node` of them); run_many like `Judge`.

    Args:
        workers: judge workers per actor; 0 = all cores of that node.
        isolation: passed to each node's `Judge` (auto fails closed where the node lacks support).
        chunk_size: jobs per Ray task; bigger amortises transport, smaller balances load.
        inflight_per_actor: chunks queued on each actor at once.
        actor_num_cpus: CPUs each actor reserves in Ray's accounting (a scheduling token; the judge
            itself uses `workers` processes). Must fit on the node.
        actors_per_node: >1 only for testing re-assembly on a single machine.
        max_attempts: a chunk whose actor died is re-sent to another actor up to this many times
            in total; after that its tests come back as SE (counted, logged), never as WA.
    """

    def __init__(
        self,
        *,
        workers: int = 0,
        isolation: str = "auto",
        chunk_size: int = 32,
        inflight_per_actor: int = 2,
        actor_num_cpus: float = 1,
        actors_per_node: int = 1,
        max_attempts: int = 3,
    ) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if not ray.is_initialized():
            raise RuntimeError(
                "RayJudgePool needs a running Ray session: call ray.init(address='auto') on a cluster "
                "(or ray.init(num_cpus=N) locally) first"
            )
        if chunk_size < 1 or inflight_per_actor < 1 or actors_per_node < 1 or max_attempts < 1:
            raise ValueError("chunk_size, inflight_per_actor, actors_per_node and max_attempts must be >= 1")
        self.chunk_size = chunk_size
        self.inflight_per_actor = inflight_per_actor
        self.max_attempts = max_attempts
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources",
                                                                    {}).get("CPU",
                                                                            0) >= actor_num_cpus * actors_per_node]
        if not nodes:
            raise RuntimeError(
                f"no alive Ray node has {actor_num_cpus * actors_per_node} CPUs for judge actors "
                f"(nodes: {[(n.get('NodeID'), n.get('Resources', {}).get('CPU')) for n in ray.nodes()]})"
            )
        actor_cls = ray.remote(_JudgeActor)
        self._actors = [
            actor_cls.options(
                num_cpus=actor_num_cpus,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=True),
                max_restarts=1,
                max_task_retries=1,
            ).remote(workers, isolation)
            for node in nodes
            for _ in range(actors_per_node)
        ]
        self.failed_chunks = 0  # chunks that exhausted max_attempts (their tests came back SE)
        self._node_ids = [node["NodeID"] for node in nodes for _ in range(actors_per_node)]
        self.jobs_per_actor = [0] * len(self._actors)  # jobs each actor answered (how the work spread)
        self._dead: set[int] = set()  # actor indices seen dead (never sent work again)

    @property
    def num_actors(self) -> int:
        return len(self._actors)

    def jobs_per_node(self) -> dict[str, int]:
        """Jobs answered per Ray node id so far (the pool's actors are placed one per node)."""
        out: dict[str, int] = {}
        for node, n in zip(self._node_ids, self.jobs_per_actor):
            out[node] = out.get(node, 0) + n
        return out

    def info(self) -> list[dict[str, Any]]:
        import ray

        return ray.get([a.info.remote() for a in self._actors])

    def run_many(self, jobs: Sequence[Any], *, progress: bool = False) -> list[list[TestResult]]:
        """Run every JudgeJob; results in job order, each job's tests in input order."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        jobs = list(jobs)
        chunks = [(start, jobs[start : start + self.chunk_size]) for start in range(0, len(jobs), self.chunk_size)]
        out: list[list[TestResult] | None] = [None] * len(jobs)
        todo = [(i, 1) for i in range(len(chunks))]  # (chunk index, attempt), consumed from the end
        todo.reverse()
        load = [0] * len(self._actors)
        dead = self._dead
        pending: dict[Any, tuple[int, int, int]] = {}  # ref -> (chunk, attempt, actor)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc="judge (ray)", unit="job")

        def feed() -> None:
            while todo:
                live = [a for a in range(len(self._actors)) if a not in dead and load[a] < self.inflight_per_actor]
                if not live:
                    return
                actor = min(live, key=lambda a: load[a])
                chunk, attempt = todo.pop()
                ref = self._actors[actor].run_many.remote(chunks[chunk][1])
                pending[ref] = (chunk, attempt, actor)
                load[actor] += 1

        feed()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            chunk, attempt, actor = pending.pop(ref)
            load[actor] -= 1
            start, chunk_jobs = chunks[chunk]
            try:
                batch = ray.get(ref)
                if len(batch) != len(chunk_jobs):
                    raise RuntimeError(f"actor returned {len(batch)} results for {len(chunk_jobs)} jobs")
            except (RayActorError, RayTaskError, RuntimeError) as exc:
                if isinstance(exc, RayActorError):
                    dead.add(actor)
                if attempt < self.max_attempts and len(dead) < len(self._actors):
                    logger.warning("judge chunk %d failed on actor %d (attempt %d): %s; re-sending", chunk, actor,
                                   attempt, exc)
                    todo.append((chunk, attempt + 1))
                    feed()
                    continue
                self.failed_chunks += 1
                logger.error("judge chunk %d (%d jobs) failed %d times; its tests are SE: %s", chunk, len(chunk_jobs),
                             attempt, exc)
                why = f"ray fan-out failed: {type(exc).__name__}: {exc}"
                batch = [_sandbox_error_results(job, why) for job in chunk_jobs]
            else:
                self.jobs_per_actor[actor] += len(chunk_jobs)
            for offset, results in enumerate(batch):
                out[start + offset] = results
            if bar is not None:
                bar.update(len(chunk_jobs))
            feed()
        for chunk, _attempt in todo:  # only when every actor died: nobody left to run these
            self.failed_chunks += 1
            start, chunk_jobs = chunks[chunk]
            logger.error("judge chunk %d (%d jobs) not run: every judge actor died", chunk, len(chunk_jobs))
            for offset, job in enumerate(chunk_jobs):
                out[start + offset] = _sandbox_error_results(job, "ray fan-out failed: every judge actor died")
        if bar is not None:
            bar.close()
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:  # every chunk is either answered or SE-filled above; this guards the invariant
            raise RuntimeError(f"ray fan-out lost results for jobs {missing[:10]}")
        return out  # type: ignore[return-value]

    def close(self) -> None:
        import ray

        try:
            ray.get([a.close.remote() for i, a in enumerate(self._actors) if i not in self._dead], timeout=60)
        except Exception as exc:  # actor already gone; killing it below is enough
            logger.warning("closing judge actors: %s", exc)
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def __enter__(self) -> RayJudgePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_many_on_ray(jobs: Sequence[Any], **pool_kwargs: Any) -> list[list[TestResult]]:
    """One-shot helper: start a pool on the current Ray session, run `jobs`, stop the pool."""
    with RayJudgePool(**pool_kwargs) as pool:
        return pool.run_many(jobs)
