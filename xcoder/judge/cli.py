"""`xcoder judge`: run programs on tests, serve a SandboxFusion-compatible API, benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from xcoder.judge.compare import COMPARATORS


class UsageError(Exception):
    """Bad command-line input (missing file, malformed tests): exit 2 with the message."""


def _add_judge_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=0, help="parallel tests (0 = all cores)")
    p.add_argument(
        "--isolation", choices=["auto", "bwrap", "none"], default="auto",
        help="auto/bwrap: bubblewrap sandbox (fails closed); none: UNSAFE, trusted code only",
    )


def build_parser(with_serve_options: bool = False) -> argparse.ArgumentParser:
    """`with_serve_options` imports the server module (fastapi...) only when `serve` is asked for."""
    parser = argparse.ArgumentParser(prog="xcoder judge", description="Sandbox judge.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one program on a JSONL file of tests; one JSON result per line")
    run.add_argument("--program", required=True, type=Path, help="program source file")
    run.add_argument("--tests", required=True, type=Path,
                     help='JSONL: {"input": str, "output": str|null} (stdio/call) or {"code": str} (assert)')
    run.add_argument("--language", choices=["python", "cpp"], default=None, help="default: from the file suffix")
    run.add_argument("--kind", choices=["stdio", "call", "assert"], default="stdio")
    run.add_argument("--fn-name", default=None, help="kind=call: Solution method or top-level function")
    run.add_argument("--compare", default="strip", help=f"one of {sorted(COMPARATORS)} or float:TOL")
    run.add_argument("--time-limit", type=float, default=10.0, help="wall seconds per test")
    run.add_argument("--memory-mb", type=int, default=256, help="per test; 0 = no limit")
    run.add_argument("--stop-on-first-failure", action="store_true")
    _add_judge_options(run)

    serve = sub.add_parser("serve", help="HTTP server with SandboxFusion's POST /run_code")
    if with_serve_options:
        try:
            from xcoder.judge import server
        except ImportError as exc:
            serve.set_defaults(_serve_import_error=str(exc))
            serve.add_argument("rest", nargs=argparse.REMAINDER)
        else:
            server.add_serve_arguments(serve)

    bench = sub.add_parser("bench", help="throughput: our judge vs a fresh-subprocess-per-test baseline")
    bench.add_argument("--quick", action="store_true", help="small workloads (for tests)")
    _add_judge_options(bench)
    return parser


def _read_tests(path: Path, kind: str):
    from xcoder.judge.types import JudgeTest

    if not path.is_file():
        raise UsageError(f"tests file not found: {path}")
    tests = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path}:{number}: expected a JSON object")
        if kind == "assert":
            if not isinstance(row.get("code"), str):
                raise UsageError(f'{path}:{number}: kind=assert needs {{"code": str}}')
            tests.append(JudgeTest(code=row["code"]))
        else:
            if not isinstance(row.get("input", ""), str) or not isinstance(row.get("output"), (str, type(None))):
                raise UsageError(f'{path}:{number}: need {{"input": str, "output": str|null}}')
            tests.append(JudgeTest(input=row.get("input", ""), output=row.get("output")))
    return tests


def _cmd_run(args: argparse.Namespace) -> int:
    from xcoder.judge import Judge, Limits, Program

    if not args.program.is_file():
        raise UsageError(f"program file not found: {args.program}")
    language = args.language or ("cpp" if args.program.suffix in (".cpp", ".cc", ".cxx") else "python")
    tests = _read_tests(args.tests, args.kind)
    if args.kind == "call" and not args.fn_name:
        raise UsageError("--kind call needs --fn-name")
    if args.time_limit <= 0:
        raise UsageError("--time-limit must be > 0")
    limits = Limits(time_s=args.time_limit, memory_mb=args.memory_mb or None)
    try:
        judge = Judge(workers=args.workers, isolation=args.isolation)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    with judge:
        try:
            results = judge.run(
                Program(args.program.read_text(), language), tests, kind=args.kind, fn_name=args.fn_name,
                compare=args.compare, limits=limits, stop_on_first_failure=args.stop_on_first_failure,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    for res in results:
        print(json.dumps(res.to_json()))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from xcoder.judge import Judge
    from xcoder.judge.bench import fork_floor, format_table, run_bench

    try:
        judge = Judge(workers=args.workers, isolation=args.isolation)
    except RuntimeError as exc:  # fails closed: no sandbox or no supervisor loop here
        raise UsageError(str(exc)) from None
    with judge:
        rows = run_bench(judge, quick=args.quick)
        floor = fork_floor(judge.workers, 200 if args.quick else 2000)
        print(format_table(rows, judge, floor))
    return 0


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    parser = build_parser(with_serve_options=bool(argv) and argv[0] == "serve")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "bench":
            return _cmd_bench(args)
        if getattr(args, "_serve_import_error", None):
            print(f"xcoder judge serve: the server module is unavailable ({args._serve_import_error})", file=sys.stderr)
            return 2
        from xcoder.judge import server

        return int(server.run_server(args) or 0)
    except UsageError as exc:
        print(f"xcoder judge {args.command}: {exc}", file=sys.stderr)
        return 2
