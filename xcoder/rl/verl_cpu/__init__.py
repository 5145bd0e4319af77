"""Stock verl 0.9.1 `main_ppo` on a CPU-only machine, through verl's own extension points.

verl knows only CUDA/NPU/ROCm platforms and vLLM/SGLang/TRT-LLM rollouts; on a machine without GPUs
its trainer stops at NCCL or at the rollout registry. This package adds what is missing, and is
imported in EVERY verl process (driver, TaskRunner, FSDP workers, agent-loop and reward workers)
because verl imports the modules named in `VERL_USE_EXTERNAL_MODULES` from `verl/__init__.py`:

* `platform`  - a `cpu` platform for `PlatformRegistry` (gloo, Ray resource "GPU", device "cpu"),
                selected with `VERL_PLATFORM=cpu`;
* `hf_rollout` - an `hf` rollout: a Ray actor running Hugging Face `generate` (registered with
                `RolloutReplicaRegistry`) and the worker-side adapter that pushes trained weights to it;
* `patches`   - the two places no extension point reaches, each checked against verl 0.9.1 first
                (a changed verl fails with one clear line instead of training wrongly).

`profile` (no verl import) renders the CPU overrides and environment for `xcoder rl`; it is what
switches this package on, and only for CPU launches (`rl.cpu`). Nothing here is imported on GPU runs.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

MODULE = __name__  # the value of VERL_USE_EXTERNAL_MODULES


def install() -> None:
    """Register the platform and rollout and apply the patches (idempotent, per process)."""
    from xcoder.rl.verl_cpu import hf_rollout, patches, platform

    patches.check_verl_version()
    platform.register()
    hf_rollout.register()
    patches.apply()


# verl imports this module by name from VERL_USE_EXTERNAL_MODULES; importing it elsewhere (tests,
# `xcoder rl --dry-run`) must not touch verl, so install only inside a verl process that asked for it.
if MODULE in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(","):
    install()
