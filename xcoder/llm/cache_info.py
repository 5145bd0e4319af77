"""`python -m xcoder.llm.cache_info DIR`: what a response cache holds (e.g. a shipped replay cache)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from xcoder.llm.cache import summarize


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.llm.cache_info", description=__doc__)
    parser.add_argument("cache_dir")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.cache_dir):
        print(f"no cache directory at {args.cache_dir}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    print(json.dumps(summarize(args.cache_dir), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
