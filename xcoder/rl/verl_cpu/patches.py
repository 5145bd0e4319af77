"""The only changes to verl's behaviour that no extension point reaches, each checked first.

Pinned verl: 0.9.1. Each patch verifies that the object it touches still has the shape it was
written against and raises `VerlPatchError` (one line: what changed, where) otherwise, so a verl
upgrade fails at start-up instead of silently training on a half-patched trainer.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

PINNED_VERL = "0.9.1"
CPU_BACKEND = "cpu:gloo"


class VerlPatchError(RuntimeError):
    """The installed verl differs from the one the CPU backend was written for."""


def check_verl_version() -> None:
    import verl

    if getattr(verl, "__version__", None) != PINNED_VERL:
        raise VerlPatchError(f"xcoder's verl CPU backend is written for verl=={PINNED_VERL}, found "
                             f"{getattr(verl, '__version__', '?')}: re-check xcoder/rl/verl_cpu against it")


def check_process_group_init(fn: Any) -> None:
    """`initialize_global_process_group_ray(timeout_second=None, backend=None)` as in 0.9.1."""
    params = list(inspect.signature(fn).parameters.values())
    shape = [(p.name, p.default) for p in params]
    if (shape != [("timeout_second", None), ("backend", None)]
            and shape != [("timeout_second", None), ("backend", CPU_BACKEND)]):
        raise VerlPatchError(f"verl.utils.distributed.initialize_global_process_group_ray changed: signature {shape}, "
                             "expected (timeout_second=None, backend=None)")


def patch_process_group_backend() -> None:
    """verl builds the backend `cpu:gloo,{device}:{backend}`: on CPU `cpu:gloo,cpu:gloo`, which torch
    rejects as a duplicate. Make `cpu:gloo` the default of the function itself: every module that
    imported it by name (engine_workers, checkpoint_engine) then calls the same, patched object."""
    from verl.utils import distributed

    fn = getattr(distributed, "initialize_global_process_group_ray", None)
    if fn is None:
        raise VerlPatchError("verl.utils.distributed.initialize_global_process_group_ray is missing")
    check_process_group_init(fn)
    fn.__defaults__ = (None, CPU_BACKEND)


def check_rollout_registry(registry: Any) -> None:
    """`verl.workers.rollout.base._ROLLOUT_REGISTRY`: {(name, mode): "module.Class"} as in 0.9.1."""
    if not isinstance(registry, dict) or not isinstance(registry.get(("vllm", "async")), str):
        raise VerlPatchError("verl.workers.rollout.base._ROLLOUT_REGISTRY changed: expected a dict "
                             "{(name, mode): 'module.Class'} holding ('vllm', 'async')")


def register_rollout_adapter(name: str, fqn: str) -> None:
    """The worker-side half of a rollout has no public registry in 0.9.1: add it to the private dict
    `get_rollout_class` reads."""
    from verl.workers.rollout import base

    registry = getattr(base, "_ROLLOUT_REGISTRY", None)
    check_rollout_registry(registry)
    registry[(name, "async")] = fqn


def apply() -> None:
    patch_process_group_backend()
