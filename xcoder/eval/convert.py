"""One-time converter: LiveCodeBench JSONL/parquet with pickled private tests -> a JSONL whose
private tests are plain JSON (no pickle needed to read it again; LCB's own loader accepts it).

    python -m xcoder.eval.convert test5.jsonl test6.jsonl OUT.jsonl --trust-pickle [--start 2024-08-01]

Unpickling executes code: pass --trust-pickle only for files from a trusted source (the official
`livecodebench/code_generation_lite` hub files). Even then a restricted unpickler refuses any
class or function reference, so a tampered file fails rather than running code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from xcoder.eval.lcb_data import PickleRefused, convert_to_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.eval.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="source file(s) then the destination JSONL")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow unpickling private tests (trusted source only)")
    parser.add_argument("--start", help="keep contest_date >= START (YYYY-MM-DD)")
    parser.add_argument("--end", help="keep contest_date <= END (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    if len(args.paths) < 2:
        parser.error("need at least one source and a destination")
    *sources, dest = (Path(p) for p in args.paths)
    try:
        n = convert_to_json(sources, dest, trust_pickle=args.trust_pickle,
                            start=dt.datetime.fromisoformat(args.start) if args.start else None,
                            end=dt.datetime.fromisoformat(args.end) if args.end else None)
    except PickleRefused as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
