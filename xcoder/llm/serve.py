"""`python -m xcoder.llm.serve [overrides]`: the `llm.serve` config as shell assignments.

scripts/serve_vllm.sh evals this so TP/DP/ports come from the same Hydra tree as everything else
(flags given to the script override them).
"""

from __future__ import annotations

import shlex
import sys

from omegaconf import OmegaConf

from xcoder.config import ConfigError, compose

FIELDS = {
    "SERVE_MODEL": "model", "SERVE_SERVED_NAME": "served_model_name", "SERVE_TP": "tensor_parallel",
    "SERVE_DP": "data_parallel",
    "SERVE_GPUS": "gpus_per_node", "SERVE_BASE_PORT": "base_port", "SERVE_HOST": "host",
    "SERVE_API_KEY_ENV": "api_key_env", "SERVE_MAX_MODEL_LEN": "max_model_len",
    "SERVE_REASONING_PARSER": "reasoning_parser", "SERVE_GPU_MEM": "gpu_memory_utilization",
    "SERVE_READY_TIMEOUT": "ready_timeout_s",
}


def shell_assignments(overrides: list[str]) -> str:
    serve = OmegaConf.to_container(compose(overrides).llm.serve, resolve=True)
    lines = [f"{var}={shlex.quote('' if serve[key] is None else str(serve[key]))}" for var, key in FIELDS.items()]
    lines.append(f"SERVE_EXTRA_ARGS={shlex.quote(shlex.join(str(a) for a in serve['extra_args'] or []))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        print(shell_assignments(list(sys.argv[1:] if argv is None else argv)))
    except ConfigError as exc:
        print(f"serve config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
