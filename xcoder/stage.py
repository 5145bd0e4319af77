"""Shared entry logic for Hydra-configured stages: parse flags, compose, print or run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from xcoder.config import ConfigError, compose, to_yaml

StageRunner = Callable[[DictConfig, bool], int]

# What a user can cause and fix (a missing input file or model, a bad value, an unreachable host, an
# unset `???` knob): these end a stage with one line on stderr. Anything else is a bug and keeps its
# traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, KeyError, MissingMandatoryValue, InterpolationResolutionError,
)
DEBUG_ENV = "XCODER_DEBUG"


def debug_enabled(flag: bool = False) -> bool:
    """`--debug` or XCODER_DEBUG=1 (inherited by the stages a pipeline launches) keeps tracebacks."""
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (KeyError's repr quotes are dropped)."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines) or type(exc).__name__


def report_user_error(stage: str, exc: BaseException) -> int:
    print(f"xcoder {stage}: error: {one_line(exc)} (--debug or {DEBUG_ENV}=1 shows the traceback)",
          file=sys.stderr)
    return 2


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def stage_main(argv: Sequence[str], *, stage: str, description: str, runner: StageRunner) -> int:
    """Parse `[--cfg job] [--dry-run] key=value ...`, compose the config and call `runner`."""
    parser = argparse.ArgumentParser(
        prog=f"xcoder {stage}",
        description=description,
        epilog="Overrides use Hydra syntax: key=value, group=option (e.g. experiment=demo), +new_key=value.",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the commands this stage would launch")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks of user errors (or {DEBUG_ENV}=1)")
    args = parser.parse_args(list(argv))
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        parser.error(f"overrides must look like key=value, got: {' '.join(bad)}")
    try:
        cfg = compose(args.overrides)
    except ConfigError as exc:
        print(f"xcoder {stage}: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.cfg == "job":
        print(to_yaml(cfg))
        return 0
    setup_logging(cfg.run.log_level)
    if args.debug:
        os.environ[DEBUG_ENV] = "1"  # stages launched from here (pipeline) keep tracebacks too
    try:
        return int(runner(cfg, args.dry_run) or 0)
    except USER_ERRORS as exc:
        if debug_enabled(args.debug):
            raise
        return report_user_error(stage, exc)
