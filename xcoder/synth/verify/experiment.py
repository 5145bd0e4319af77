"""Measured labelling accuracy of dual verification on real problems (LeetCodeDataset).

Reproduces the shape of the paper's verification experiment offline: for each problem, a candidate
pool of n programs is drawn from the reference solution and systematically mutated wrong variants
(operator flips, off-by-one, wrong base cases, min/max and and/or swaps) at a given error rate; the
pool votes on the problem's test inputs; we report labelling accuracy against the dataset's true
outputs and the golden solution's pass rates, for n = 4/8/16 and several error rates.

Every program (reference + mutants) runs once per problem in the judge; pools are then sampled
from those recorded outputs (voting depends only on outputs), so the sweep costs no extra runs.

    python data-recipe/verify_experiment.py [--limit 228] [--mutants 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xcoder.synth.tasks.parse import ParseFailure, leetcode_args_to_lines, parse_signature
from xcoder.synth.verify.core import GoldenConfig, VoteConfig, normalize_output, verify_outputs, vote_test
from xcoder.synth.verify.mutate import mutants

log = logging.getLogger(__name__)

DEFAULT_DATA = "/work/shared/data/LeetCodeDataset-v0.3.1-test.jsonl.gz"
PRELUDE = "from typing import *\nfrom collections import *\nfrom itertools import *\nfrom functools import *\n" \
          "from heapq import *\nfrom bisect import *\nfrom math import *\nfrom string import *\n" \
          "import math, collections, itertools, functools, heapq, bisect, string, re, random, operator\n" \
          "inf = float('inf')\n"


def _true_output(text: str, annotation: str) -> Any:
    """The dataset's expected value: a Python literal, or raw text for str-returning methods."""
    try:
        value = ast.literal_eval(text)
        return list(value) if isinstance(value, tuple) else value
    except (ValueError, SyntaxError):
        if annotation.strip() == "str":
            return text
        raise ParseFailure("bad_output", text[:40]) from None


def load_problems(path: str, limit: int | None, max_tests: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    skipped: dict[str, int] = {}
    problems = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    for r in rows:
        if "TreeNode" in r["starter_code"] or "ListNode" in r["starter_code"]:
            skipped["linked_structures"] = skipped.get("linked_structures", 0) + 1
            continue
        try:
            fn_name, params = parse_signature(r["starter_code"])
        except ParseFailure:
            skipped["bad_signature"] = skipped.get("bad_signature", 0) + 1
            continue
        annotation = r["starter_code"].split("->")[-1].split(":")[0] if "->" in r["starter_code"] else ""
        tests = []
        for t in r["input_output"]:
            try:
                tests.append({"input": leetcode_args_to_lines(t["input"], params),
                              "truth": json.dumps(_true_output(t["output"], annotation))})
            except (ParseFailure, TypeError, ValueError):
                skipped["unparseable_test"] = skipped.get("unparseable_test", 0) + 1
            if len(tests) >= max_tests:
                break
        if len(tests) < 4:
            skipped["too_few_tests"] = skipped.get("too_few_tests", 0) + 1
            continue
        problems.append({"id": r["task_id"], "fn_name": fn_name, "code": r["completion"], "tests": tests,
                         "difficulty": r.get("difficulty", "")})
        if limit and len(problems) >= limit:
            break
    return problems, skipped


def record_outputs(problems: list[dict[str, Any]], *, n_mutants: int, seed: int, workers: int,
                   isolation: str, time_s: float = 2.0, batch: int = 8) -> dict[str, int]:
    """Run reference + up to n_mutants wrong variants per problem in the judge; keep true-labelled tests."""
    from xcoder.judge import Judge, JudgeJob, JudgeTest, Limits, Program, Verdict

    stats = {"problems": 0, "reference_disagrees_tests": 0, "mutants_equivalent": 0, "mutants_wrong": 0,
             "mutants_slow_discarded": 0}
    screen = Limits(time_s=1, memory_mb=1024)
    limits = Limits(time_s=time_s, memory_mb=1024)
    with Judge(workers=workers, isolation=isolation) as judge:
        for start in tqdm(range(0, len(problems), batch), desc="judge", unit="batch"):
            chunk = problems[start : start + batch]
            # screen: mutants that time out on the first test (mutated loop bounds) would only burn
            # time_s x tests of judge time each and never vote; discard them (counted)
            screen_jobs = []
            for p in chunk:
                rng = random.Random(f"{seed}:{p['id']}")
                muts = list(mutants(p["code"]))
                rng.shuffle(muts)
                p["programs"] = [("reference", p["code"])] + muts[: n_mutants + 4]
                screen_jobs += [JudgeJob(Program(PRELUDE + code), [JudgeTest(input=p["tests"][0]["input"])],
                                         kind="call",
                                         fn_name=p["fn_name"], limits=screen) for _, code in p["programs"]]
            screened = iter(judge.run_many(screen_jobs))
            for p in chunk:
                fast = [prog for prog in p["programs"] if next(screened)[0].verdict != Verdict.TLE]
                stats["mutants_slow_discarded"] += len(p["programs"]) - len(fast)
                p["programs"] = fast if fast and fast[0][0] == "reference" else p["programs"][:1]
            jobs, owners = [], []
            for p in chunk:
                for _kind, code in p["programs"]:
                    jobs.append(JudgeJob(Program(PRELUDE + code), [JudgeTest(input=t["input"]) for t in p["tests"]],
                                         kind="call", fn_name=p["fn_name"], limits=limits))
                    owners.append(p)
            results = judge.run_many(jobs)
            pos = 0
            for p in chunk:
                outs = []
                for _ in p["programs"]:
                    row = results[pos]
                    pos += 1
                    outs.append([normalize_output(r.stdout, "call") if r.verdict == Verdict.AC else None for r in row])
                truth = [normalize_output(t["truth"], "call") for t in p["tests"]]
                good = [j for j, (o, t) in enumerate(zip(outs[0], truth)) if o is not None and o == t]
                stats["reference_disagrees_tests"] += len(truth) - len(good)
                p["truth"] = [truth[j] for j in good]
                p["ref_out"] = [outs[0][j] for j in good]
                wrong = []
                for (kind, _), row in zip(p["programs"][1:], outs[1:]):
                    row = [row[j] for j in good]
                    if row == p["ref_out"]:
                        stats["mutants_equivalent"] += 1
                    elif len(wrong) < n_mutants:
                        wrong.append({"kind": kind, "out": row})
                stats["mutants_wrong"] += len(wrong)
                p["wrong"] = wrong
                del p["programs"]
    kept = [p for p in problems if len(p["truth"]) >= 4 and p["wrong"]]
    stats["problems"] = len(kept)
    problems[:] = kept
    return stats


def simulate(problems: list[dict[str, Any]], *, n: int, error_rate: float, repeats: int, seed: int,
             vote_cfg: VoteConfig, golden_cfg: GoldenConfig, correlation: float = 0.5) -> dict[str, float]:
    """Each candidate is wrong with probability error_rate; a wrong candidate is the pool's shared
    ("dominant") mutant with probability `correlation` (correlated teacher errors), else a random one."""
    rng = random.Random(f"{seed}:{n}:{error_rate}")
    label_ok = label_total = labelled = 0
    golden_avg: list[float] = []
    golden_full = kept = kept_full = 0
    trials = 0
    for p in problems:
        m = len(p["truth"])
        tests = [{"test_id": f"{p['id']}:{j}", "input": "", "tag": "plain"} for j in range(m)]
        for rep in range(repeats):
            trials += 1
            dominant = rng.choice(p["wrong"])["out"]
            pool = [(dominant if rng.random() < correlation else rng.choice(p["wrong"])["out"])
                    if rng.random() < error_rate else p["ref_out"] for _ in range(n)]
            res = verify_outputs(task_id=f"{p['id']}:{rep}", kind="call", candidate_ids=[str(i) for i in range(n)],
                                 tests=tests, outputs=pool, vote_cfg=vote_cfg, golden_cfg=golden_cfg)
            for j in range(m):
                v = vote_test([row[j] for row in pool], vote_cfg, f"{p['id']}:{rep}:{j}")
                label_total += 1
                if v.label is not None:
                    labelled += 1
                    label_ok += v.label == p["truth"][j]
            if res.golden_index is not None:
                g = pool[res.golden_index]
                rate = sum(o == t for o, t in zip(g, p["truth"])) / m
            else:
                rate = 0.0
            golden_avg.append(rate)
            golden_full += rate == 1.0
            if res.status == "kept":
                kept += 1
                kept_full += rate == 1.0
    return {
        "label_acc": 100 * label_ok / label_total,
        "label_acc_labelled": 100 * label_ok / max(1, labelled),
        "golden_avg": 100 * statistics.mean(golden_avg),
        "golden_full": 100 * golden_full / trials,
        "kept": 100 * kept / trials,
        "kept_full": 100 * kept_full / max(1, kept),
        "trials": trials,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Dual-verification labelling accuracy on LeetCodeDataset.")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=0, help="problems to use (0 = all usable)")
    ap.add_argument("--max-tests", type=int, default=20, help="tests per problem (paper: <= 20)")
    ap.add_argument("--mutants", type=int, default=8, help="wrong variants per problem")
    ap.add_argument("--repeats", type=int, default=5, help="pools sampled per problem and setting")
    ap.add_argument("--n", default="4,8,16")
    ap.add_argument("--error-rates", default="0.25,0.5,0.65")
    ap.add_argument("--correlation", type=float, default=0.5,
                    help="probability that a wrong candidate repeats the pool's shared mutant (correlated errors)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--time-s", type=float, default=2.0, help="judge time limit per test")
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    problems, skipped = load_problems(args.data, args.limit or None, args.max_tests)
    stats = record_outputs(problems, n_mutants=args.mutants, seed=args.seed, workers=args.workers,
                           isolation=args.isolation, time_s=args.time_s)
    ns = [int(x) for x in args.n.split(",")]
    rates = [float(x) for x in args.error_rates.split(",")]
    rules = {
        "ours": (VoteConfig(seed=args.seed), GoldenConfig(min_tests=4, seed=args.seed)),
        "upstream": (VoteConfig(min_support=1, min_agreement=0.0, tie_break="seeded", seed=args.seed),
                     GoldenConfig(min_tests=1, min_select_score=0.0, min_holdout_pass=0.0, select_fraction=1.0,
                                  drop_golden_disagreements=False, reject_constant_outputs=False,
                                  max_empty_fraction=1.0, seed=args.seed)),
    }
    table = []
    for rule, (vc, gc) in rules.items():
        for e in rates:
            for n in ns:
                r = simulate(problems, n=n, error_rate=e, repeats=args.repeats, seed=args.seed, vote_cfg=vc,
                             golden_cfg=gc,
                             correlation=args.correlation)
                table.append({"rule": rule, "error_rate": e, "n": n, **r})
    tests = sum(len(p["truth"]) for p in problems)
    print(f"LeetCodeDataset v0.3.1 test: {len(problems)} problems, {tests} tests (<= {args.max_tests}/problem), "
          f"{stats['mutants_wrong']} wrong mutants ({stats['mutants_equivalent']} equivalent ones discarded), "
          f"{args.repeats} pools per problem and setting, error correlation {args.correlation}; skipped: {skipped}; "
          f"tests where the reference disagrees with the dataset (excluded): {stats['reference_disagrees_tests']}")
    print("\n| rule | error rate | n | labelling acc. | acc. of labelled | golden avg pass | golden full pass | tasks "
          "kept | kept with full-pass golden |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['rule']} | {r['error_rate']:.2f} | {r['n']} | {r['label_acc']:.2f}% | "
              f"{r['label_acc_labelled']:.2f}% | "
              f"{r['golden_avg']:.2f}% | {r['golden_full']:.2f}% | {r['kept']:.1f}% | {r['kept_full']:.2f}% |")
    print(f"\n({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"stats": stats, "skipped": skipped, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
