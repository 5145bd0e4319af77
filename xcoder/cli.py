"""`xcoder` console script: one subcommand per stage, each a thin layer over library functions."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from xcoder import registry

# subcommand -> (module exposing `main(argv) -> int`, or None for a registry stage; one-line help).
# The pipeline stages come from `xcoder.registry`; the judge and the pipeline are tools around them.
STAGES: dict[str, tuple[str | None, str]] = {
    "judge": ("xcoder.judge.cli", "sandbox judge: run programs on tests, serve /run_code, benchmark"),
    **{s.name: (None, s.help) for s in registry.STAGES.values()},
    "pipeline": ("xcoder.pipeline", "the whole chain: synth -> sft -> rl -> eval"),
}

USAGE = """usage: xcoder <stage> [options] [key=value ...]

Stages:
{stages}

Hydra stages (synth, sft, rl, eval, pipeline) take config overrides (`key=value`,
`experiment=NAME`, `cluster=slurm`), `--cfg job` to print the resolved config and
`--dry-run` to print what would be launched. `xcoder <stage> --help` for details.
"""


def usage() -> str:
    width = max(map(len, STAGES))
    lines = [f"  {name.ljust(width)}  {text}" for name, (_, text) in STAGES.items()]
    return USAGE.format(stages="\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from xcoder import __version__

        print(__version__)
        return 0
    stage = args[0]
    if stage not in STAGES:
        print(f"xcoder: unknown stage {stage!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = STAGES[stage][0]
    entry = registry.stage_cli(stage) if module is None else importlib.import_module(module).main
    return int(entry(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
