"""What dual verification keeps on real LLM candidate pools, and how often it is right.

For every HumanEval problem the recorded outputs (`real_pools`) are cut into disjoint pools of n
candidates (n = 4, 8, 16); each pool goes through the verify stage's own decision function
(`verify_outputs`) under each rule, and the kept tasks are scored against ground truth:

- label precision: kept labels equal to the canonical solution's output on that input (under the
  grading equality; a label on an input where the canonical solution fails counts as wrong);
- golden precision: kept tasks whose golden candidate passes HumanEval's own `check`;
- coverage: kept tasks with a truly correct golden / pools holding at least one correct candidate.

Rules: `plurality` (plain per-test plurality, golden = most agreeing candidate, no filter: the
baseline), `paper` (X-Coder's vote + weighted golden on half + hold-out: `synth.verify.preset=paper`)
and `consensus` (the default). Settings are the stage's defaults from configs/synth/default.yaml.

    python data-recipe/verify_real_experiment.py [--max-tests 20] [--n 4,8,16] [--write-calibration]

The consensus thresholds were chosen on this data (there is no second real pool set here): the
run also prints the default rule on the even- and odd-numbered problems separately, as a check that
the figures are not carried by a few problems. HumanEval functions are simpler than competitive
programming tasks; what transfers is the ranking of the rules and the cost of each threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xcoder.synth.verify.calibration import CALIBRATION_FILE, bucket_of, write_calibration
from xcoder.synth.verify.core import (
    ConsensusConfig,
    GoldenConfig,
    VoteConfig,
    normalize_output,
    output_key,
    verify_outputs,
)
from xcoder.synth.verify.real_pools import DATA_DIR, load_or_record

log = logging.getLogger(__name__)

DEFAULT_CACHE = "outputs/verify_real/cache"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One verification setting: the stage's configs (consensus None = the paper rule)."""

    name: str
    vote: VoteConfig
    golden: GoldenConfig
    consensus: ConsensusConfig | None = None


def default_rules(seed: int = 42) -> list[Rule]:
    """Baseline, paper preset and the default, at the stage's default knob values."""
    plurality = Rule("plurality", VoteConfig(min_support=1, min_agreement=0.0, tie_break="seeded", seed=seed),
                     GoldenConfig(min_tests=1, min_select_score=0.0, min_holdout_pass=0.0, select_fraction=1.0,
                                  drop_golden_disagreements=False, reject_constant_outputs=False,
                                  max_empty_fraction=1.0, seed=seed))
    paper = Rule("paper", VoteConfig(seed=seed), GoldenConfig(seed=seed))
    consensus = Rule("consensus", VoteConfig(seed=seed), GoldenConfig(seed=seed), ConsensusConfig())
    return [plurality, paper, consensus]


def cap_tests(problems: list[dict[str, Any]], max_tests: int) -> list[dict[str, Any]]:
    """At most `max_tests` inputs per problem, chosen as the tests stage caps them (samples first,
    then round-robin over the other sources), with their recorded outputs."""
    out = []
    for p in problems:
        samples = [j for j, t in enumerate(p["tests"]) if t["source"] == "sample"]
        groups = [[j for j, t in enumerate(p["tests"]) if t["source"] == src] for src in ("prompted", "mutated")]
        picked = samples[:max_tests]
        while len(picked) < max_tests and any(groups):
            for g in groups:
                if g and len(picked) < max_tests:
                    picked.append(g.pop(0))
        picked.sort()
        out.append({**p, "tests": [p["tests"][j] for j in picked], "truth": [p["truth"][j] for j in picked],
                    "outputs": [[row[j] for j in picked] for row in p["outputs"]]})
    return out


def pools_of(problem: dict[str, Any], n: int) -> list[list[int]]:
    """Disjoint pools of n candidate indices, in sampling order."""
    total = len(problem["candidates"])
    return [list(range(s, s + n)) for s in range(0, total - n + 1, n)]


def score_pool(problem: dict[str, Any], pool: list[int], rule: Rule, *, pool_id: str) -> dict[str, Any]:
    """Run one pool through `verify_outputs` and score what it keeps against ground truth."""
    kind = "call"
    tests = [{"test_id": t["test_id"], "input": t["input"], "tag": "plain", "source": t["source"],
              **({"expected": t["expected"]} if "expected" in t else {})} for t in problem["tests"]]
    outputs = [problem["outputs"][i] for i in pool]
    res = verify_outputs(task_id=f"{problem['task_id']}:{pool_id}", kind=kind,
                         candidate_ids=[str(i) for i in pool], tests=tests, outputs=outputs,
                         vote_cfg=rule.vote, golden_cfg=rule.golden, consensus_cfg=rule.consensus)
    solvable = any(problem["correct"][i] for i in pool)
    out = {"kept": res.status == "kept", "solvable": solvable, "reason": res.reason, "labels": 0, "labels_ok": 0,
           "golden_ok": False, "evidence": res.evidence}
    if res.status != "kept":
        return out
    truth = {t["test_id"]: _truth_key(v, kind, rule.vote.normalize) for t, v in zip(problem["tests"], problem["truth"])}
    for t in res.tests:
        out["labels"] += 1
        out["labels_ok"] += truth[t["test_id"]] is not None and truth[t["test_id"]] == output_key(t["output"], kind,
                                                                                                  rule.vote.normalize)
    out["golden_ok"] = bool(problem["correct"][pool[res.golden_index]])
    return out


def _truth_key(raw: str | None, kind: str, mode: str) -> str | None:
    return None if raw is None else output_key(normalize_output(raw, kind, mode), kind, mode)


def evaluate(problems: list[dict[str, Any]], rules: list[Rule], ns: list[int],
             on_pool: Callable[[str, int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One row per (rule, n): tasks kept, label / golden precision, coverage over every pool."""
    table = []
    for rule in rules:
        for n in ns:
            agg = {"pools": 0, "solvable": 0, "kept": 0, "labels": 0, "labels_ok": 0, "golden_ok": 0,
                   "kept_all_labels_ok": 0}
            for p in problems:
                for k, pool in enumerate(pools_of(p, n)):
                    r = score_pool(p, pool, rule, pool_id=f"{n}:{k}")
                    if on_pool:
                        on_pool(rule.name, n, r)
                    agg["pools"] += 1
                    agg["solvable"] += r["solvable"]
                    if r["kept"]:
                        agg["kept"] += 1
                        agg["labels"] += r["labels"]
                        agg["labels_ok"] += r["labels_ok"]
                        agg["golden_ok"] += r["golden_ok"]
                        agg["kept_all_labels_ok"] += r["labels"] == r["labels_ok"]
            table.append({
                "rule": rule.name, "n": n, **agg,
                "label_precision": 100 * agg["labels_ok"] / max(1, agg["labels"]),
                "golden_precision": 100 * agg["golden_ok"] / max(1, agg["kept"]),
                "coverage": 100 * agg["golden_ok"] / max(1, agg["solvable"]),
                "kept_share": 100 * agg["kept"] / max(1, agg["pools"]),
            })
    return table


def format_table(table: list[dict[str, Any]]) -> str:
    lines = ["| rule | n | pools | solvable pools | tasks kept | label precision | golden precision | "
             "coverage (of solvable) | kept with every label right |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['rule']} | {r['n']} | {r['pools']} | {r['solvable']} | {r['kept']} | "
                     f"{r['label_precision']:.1f}% | {r['golden_precision']:.1f}% | {r['coverage']:.1f}% | "
                     f"{r['kept_all_labels_ok']} / {r['kept']} |")
    return "\n".join(lines)


def calibrate(problems: list[dict[str, Any]], rule: Rule, ns: list[int]) -> list[dict[str, Any]]:
    """Golden and label precision of the kept tasks per agreement bucket (pooled over n): the
    verify stage's `est_precision` for a kept task in that bucket."""
    agg: dict[str, list[int]] = {}

    def on_pool(_: str, __: int, r: dict[str, Any]) -> None:
        if r["kept"]:
            v = agg.setdefault(bucket_of(r["evidence"]["cluster_share"]), [0, 0, 0, 0])
            v[0] += 1
            v[1] += r["golden_ok"]
            v[2] += r["labels"]
            v[3] += r["labels_ok"]

    evaluate(problems, [rule], ns, on_pool)
    return [{"bucket": b, "kept": v[0], "golden_precision": round(v[1] / v[0], 4),
             "label_precision": round(v[3] / max(1, v[2]), 4)} for b, v in sorted(agg.items())]


def plot_precision_coverage(problems: list[dict[str, Any]], rule: Rule, n: int, path: Path,
                            baselines: list[dict[str, Any]] | None = None) -> Path:
    """Golden precision vs coverage as the cluster-share threshold sweeps (one curve), with the
    table's rules as points: what each threshold costs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys, labels = [], [], []
    for share in (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875):
        r = dataclasses.replace(rule, consensus=dataclasses.replace(rule.consensus or ConsensusConfig(),
                                                                    min_cluster_share=share))
        row = evaluate(problems, [r], [n])[0]
        xs.append(row["coverage"])
        ys.append(row["golden_precision"])
        labels.append(f"{share:g}")
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(xs, ys, "o-", label=f"consensus, n={n}: min_cluster_share sweep")
    for x, y, lab in zip(xs, ys, labels):
        ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for row in baselines or []:
        ax.plot(row["coverage"], row["golden_precision"], "s", label=f"{row['rule']}, n={row['n']}")
    ax.axhline(90, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("coverage: kept with a correct golden / solvable pools (%)")
    ax.set_ylabel("golden precision (%)")
    ax.set_title("Dual verification on real pools (HumanEval x CodeGen-16B)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Dual verification on real LLM candidate pools (HumanEval x CodeGen-16B).")
    ap.add_argument("--data", default=str(DATA_DIR), help="folder with the CodeT candidate and test-case files")
    ap.add_argument("--cache", default=DEFAULT_CACHE,
                    help="recorded judge outputs are kept here (rerun: no judge work)")
    ap.add_argument("--candidates", type=int, default=48,
                    help="candidates per problem run in the judge (pools are cut from them)")
    ap.add_argument("--inputs", type=int, default=40, help="model-written test inputs per problem (deduplicated)")
    ap.add_argument("--mutants", type=int, default=20, help="type-aware mutated inputs per problem (EvalPlus-style)")
    ap.add_argument("--max-tests", type=int, default=20,
                    help="inputs per problem after the tests stage's cap (samples first, then prompted/mutated "
                         "round-robin; synth.tests.max_tests default 20); 0 = every recorded input")
    ap.add_argument("--n", default="4,8,16")
    ap.add_argument("--limit", type=int, default=0, help="first N problems only (0 = all 164)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--time-s", type=float, default=0.5,
                    help="judge time limit per test (HumanEval programs run in ms; endless loops cost this much each)")
    ap.add_argument("--plot", default="data-recipe/verify_real_pools.png", help="precision-vs-coverage PNG ('' = none)")
    ap.add_argument("--json", help="also write the table as JSON here")
    ap.add_argument("--write-calibration", action="store_true",
                    help=f"write the default rule's precision per agreement bucket to {CALIBRATION_FILE.name} "
                         "(the verify stage's est_precision)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.time()
    problems = load_or_record(args.cache, data_dir=args.data, max_candidates=args.candidates, max_inputs=args.inputs,
                              mutants=args.mutants, seed=args.seed, workers=args.workers, isolation=args.isolation,
                              time_s=args.time_s)
    if args.limit:
        problems = problems[:args.limit]
    if args.max_tests:
        problems = cap_tests(problems, args.max_tests)
    t_judge = time.time() - t0
    ns = [int(x) for x in args.n.split(",")]
    rules = default_rules(args.seed)
    table = evaluate(problems, rules, ns)
    tests = [len(p["tests"]) for p in problems]
    correct = sum(sum(p["correct"]) for p in problems) / max(1, sum(len(p["correct"]) for p in problems))
    print(f"HumanEval x CodeGen-16B (CodeT release): {len(problems)} problems, {args.candidates} candidates each "
          f"({100 * correct:.1f}% truly correct), {sum(tests)} test inputs ({min(tests)}-{max(tests)} per problem: "
          f"statement samples + <= {args.inputs} model-written + <= {args.mutants} mutated"
          f"{f', capped at {args.max_tests}' if args.max_tests else ''}); judge/load {t_judge:.0f} s")
    print()
    print(format_table(table))
    halves = [evaluate(problems[k::2], rules[-1:], ns) for k in (0, 1)]
    print("\nstability of the default rule (consensus) on the two halves of the problems (even / odd index):")
    for r0, r1 in zip(*halves):
        print(f"  n={r0['n']}: label {r0['label_precision']:.1f} / {r1['label_precision']:.1f}%, golden "
              f"{r0['golden_precision']:.1f} / {r1['golden_precision']:.1f}%, coverage {r0['coverage']:.1f} / "
              f"{r1['coverage']:.1f}%")
    calibration = calibrate(problems, rules[-1], ns)
    print("\ncalibration (default rule, kept tasks pooled over n, by share of n agreeing with the golden):")
    for c in calibration:
        print(f"  {c['bucket']}: {c['kept']} kept, golden {100 * c['golden_precision']:.1f}%, "
              f"labels {100 * c['label_precision']:.1f}%")
    if args.write_calibration:
        source = f"HumanEval x CodeGen-16B, n={args.n}, max_tests={args.max_tests}"
        print(f"written: {write_calibration(calibration, source=source)}")
    if args.plot:
        n_plot = 8 if 8 in ns else max(ns)  # synth.verify.max_candidates default
        rows = [r for r in table if r["n"] == n_plot]
        path = plot_precision_coverage(problems, rules[-1], n_plot, Path(args.plot), baselines=rows)
        print(f"\nplot: {path}")
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
