"""Stage `import`: your own problems and candidates (JSONL) -> the Task / Solution / TestInput parquet
files that `verify` reads, so dual verification runs on data SynthSmith did not write (the paper's
TACO experiment: real problems, teacher solutions, verified tests).

One JSON object per line:

    {"task_id": "p1",                        # optional: defaults to the line number
     "statement": "...",                     # the problem text (any shape: it is not parsed here)
     "style": "codeforces",                  # optional: codeforces | atcoder | leetcode (default codeforces)
     "fn_name": "solve",                     # optional: call-based (one JSON argument per input line)
     "starter_code": "...",                  # optional, call-based
     "tests": [{"input": "1 2\n", "output": "3\n"},   # output optional: a known output anchors the vote
               {"input": "5 5\n", "source": "prompted", "tag": "edge"}],
     "candidates": ["print(sum(map(int, input().split())))", ...]}   # or {"code", "teacher", "language"}

Tests with an `output` become `sample` tests with that known output (candidates that contradict it
never vote); tests without one are labelled by the vote. A malformed line is a counted drop with its
line number and reason, never a crash; the stage writes what it could read.

    xcoder synth synth.stages=[import,verify,export] synth.import.path=problems.jsonl
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xcoder.records import STYLES, TEST_TAGS, Solution, Task, TestInput, write_records
from xcoder.runs import write_json_atomic
from xcoder.synth.common import DropCounter
from xcoder.synth.solutions.stage import solutions_parquet
from xcoder.synth.tasks.stage import tasks_parquet
from xcoder.synth.testgen.stage import tests_parquet

log = logging.getLogger(__name__)


class ImportError_(ValueError):
    """One line of the input cannot be imported (the reason is the drop's name)."""


def convert_line(obj: Any, line_no: int) -> tuple[Task, list[Solution], list[TestInput]]:
    """One JSONL object -> its records; raises ImportError_ with a short reason."""
    if not isinstance(obj, dict):
        raise ImportError_("not_an_object")
    statement = obj.get("statement", obj.get("question"))
    if not isinstance(statement, str) or not statement.strip():
        raise ImportError_("missing_statement")
    task_id = str(obj.get("task_id") or f"import-{line_no}")
    style = str(obj.get("style") or "codeforces")
    if style not in STYLES:
        raise ImportError_("unknown_style")
    fn_name = obj.get("fn_name") or None
    task = Task(task_id=task_id, subtree_idx=-1, style=style, question=statement, stage1="{}",
                fn_name=fn_name, starter_code=obj.get("starter_code") or None,
                provenance=json.dumps({"source": "import", "line": line_no}))
    tests_in = obj.get("tests")
    if not isinstance(tests_in, list) or not tests_in:
        raise ImportError_("missing_tests")
    tests: list[TestInput] = []
    for j, t in enumerate(tests_in):
        if isinstance(t, str):
            t = {"input": t}
        if not isinstance(t, dict) or not isinstance(t.get("input"), str):
            raise ImportError_("bad_test")
        output = t.get("output")
        if output is not None and not isinstance(output, str):
            output = json.dumps(output)  # call-based truths may be given as JSON values
        tag = str(t.get("tag") or "plain")
        if tag not in TEST_TAGS:
            raise ImportError_("bad_test_tag")
        source = "sample" if output is not None else str(t.get("source") or "prompted")
        if source not in ("sample", "prompted", "generator", "mutated"):
            raise ImportError_("bad_test_source")
        tests.append(TestInput(test_id=f"{task_id}-t{j}", task_id=task_id, input=t["input"], source=source, tag=tag,
                               expected=output))
    cands_in = obj.get("candidates")
    if not isinstance(cands_in, list) or not cands_in:
        raise ImportError_("missing_candidates")
    sols: list[Solution] = []
    for i, c in enumerate(cands_in):
        if isinstance(c, str):
            c = {"code": c}
        if not isinstance(c, dict) or not isinstance(c.get("code"), str):
            raise ImportError_("bad_candidate")
        sols.append(Solution(solution_id=f"{task_id}-c{i}", task_id=task_id,
                             teacher=str(c.get("teacher") or "imported"),
                             response=str(c.get("response") or f"```python\n{c['code']}\n```"),
                             reasoning=str(c.get("reasoning") or ""), code=c["code"],
                             language=str(c.get("language") or "python"),
                             provenance=json.dumps({"source": "import", "line": line_no})))
    return task, sols, tests


def run(cfg: DictConfig) -> dict[str, Any]:
    """Read `synth.import.path`, write the three parquet files `verify` reads, count every drop."""
    path = cfg.synth["import"].path
    if not path:
        raise FileNotFoundError("synth.import.path is not set (a JSONL file of problems; see xcoder/synth/importer.py)")
    path = Path(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"synth.import.path={path}: no such file")
    counter = DropCounter()
    tasks, sols, tests = [], [], []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                task, task_sols, task_tests = convert_line(json.loads(line), line_no)
                if task.task_id in seen:
                    raise ImportError_("duplicate_task_id")
            except json.JSONDecodeError:
                counter.drop("not_json", f"{path}:{line_no}")
                log.warning("import: %s:%d: not JSON; dropped", path, line_no)
                continue
            except ImportError_ as exc:
                counter.drop(str(exc), f"{path}:{line_no}")
                log.warning("import: %s:%d: %s; dropped", path, line_no, exc)
                continue
            seen.add(task.task_id)
            tasks.append(task)
            sols.extend(task_sols)
            tests.extend(task_tests)
    counter.kept = len(tasks)
    write_records(tasks_parquet(cfg), tasks, Task)
    write_records(solutions_parquet(cfg), sols, Solution)
    write_records(tests_parquet(cfg), tests, TestInput)
    counts = {"source": str(path), "solutions": len(sols), "tests": len(tests), **counter.as_dict()}
    write_json_atomic(Path(cfg.synth.output_dir) / "import" / "manifest.json", counts)
    return counts
