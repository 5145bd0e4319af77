"""The one place a judge is built: in this process, fanned out over Ray, or a remote server.

Why one factory: synthesis, RL rewards, eval and the judge server all need "a judge as configured";
built in one place, the `judge` config group means the same thing everywhere, and a stage never
has to know which concrete class it got (all honour `xcoder.judge.client.JudgeClient`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from xcoder.judge.client import JudgeClient

log = logging.getLogger(__name__)

MODES = ("local", "ray", "server")
TOKEN_ENV = "XCODER_JUDGE_TOKEN"


def make_judge(mode: str = "local", *, workers: int = 0, isolation: str = "auto", cpp_cache_dir: str | None = None,
               url: str | None = None, concurrency: int = 64, token_env: str = TOKEN_ENV,
               ray_address: str | None = None) -> JudgeClient:
    """`mode`: local (a `Judge` in this process) | ray (one judge actor per node of the Ray cluster,
    joined at `ray_address` unless Ray is already up) | server (HTTP to `url`, e.g. the node's judge)."""
    if mode == "local":
        from xcoder.judge.judge import Judge

        return Judge(workers=workers, isolation=isolation, cpp_cache_dir=cpp_cache_dir)
    if mode == "ray":
        import ray

        from xcoder.judge.ray_fanout import RayJudgePool

        if not ray.is_initialized():
            ray.init(address=ray_address)
        return RayJudgePool(workers=workers, isolation=isolation)
    if mode == "server":
        from xcoder.judge.client import RemoteJudgeClient

        if not url:
            raise ValueError("judge mode 'server' needs a url (rl.reward.judge.url, e.g. http://127.0.0.1:8080)")
        return RemoteJudgeClient(url, concurrency=concurrency, token_env=token_env)
    raise ValueError(f"judge mode must be one of {', '.join(MODES)}, got {mode!r}")


def cluster_mode(cfg: Any) -> str:
    """The judge mode a stage gets under `cfg.cluster`: ray for `cluster=ray`, else local."""
    return "ray" if str(cfg.cluster.name) == "ray" else "local"


def judge_from_config(cfg: Any, mode: str | None = None) -> JudgeClient:
    """A judge from the composed config: the `judge` group's workers/isolation/C++ cache, the mode
    from `cfg.cluster` unless given (the judge server and eval always judge locally)."""
    mode = mode or cluster_mode(cfg)
    j = cfg.judge
    return make_judge(mode, workers=int(j.get("workers", 0) or 0), isolation=str(j.get("isolation", "auto")),
                      cpp_cache_dir=j.get("cpp_cache_dir") or None,
                      ray_address=str(cfg.cluster.address) if mode == "ray" else None)


@contextlib.contextmanager
def judge_for_cluster(cfg: Any) -> Iterator[JudgeClient]:
    """`judge_from_config` as a context: the judge is closed at the end, and a Ray session this
    call started is shut down again."""
    started = False
    if cluster_mode(cfg) == "ray":
        import ray

        started = not ray.is_initialized()
    judge = judge_from_config(cfg)
    try:
        yield judge
    finally:
        judge.close()
        if started:
            import ray

            ray.shutdown()
