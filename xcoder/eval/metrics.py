"""Scores from per-sample correctness: avg@k (= unbiased pass@1 with n samples) ± std across the
k sample sets, unbiased pass@k (Chen et al. 2021, as LiveCodeBench's `pass_k_utils`), breakdowns."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from xcoder.eval.problems import Problem


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator 1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def score(correct: Mapping[str, Sequence[bool]], ks: Sequence[int]) -> dict[str, Any]:
    """`correct[problem_id]` = one bool per sample (all problems the same n).

    avg@n = mean over problems of c/n. Sample set j = the j-th sample of every problem; std is the
    sample standard deviation (ddof=1) of the n per-set pass@1 values (the paper's "±" is not
    defined [paper-recipe §10, U]; ddof=0 is stored too)."""
    if not correct:
        return {"problems": 0}
    ns = {len(v) for v in correct.values()}
    if len(ns) != 1:
        raise ValueError(f"every problem needs the same number of samples, got {sorted(ns)}")
    n = ns.pop()
    if n == 0:
        raise ValueError("no samples to score")
    per_problem = {pid: sum(v) / n for pid, v in correct.items()}
    per_set = [sum(v[j] for v in correct.values()) / len(correct) for j in range(n)]
    out: dict[str, Any] = {
        "problems": len(correct),
        "n": n,
        f"avg@{n}": 100.0 * statistics.fmean(per_problem.values()),
        "std": 100.0 * statistics.stdev(per_set) if n > 1 else 0.0,
        "std_ddof0": 100.0 * statistics.pstdev(per_set),
        "per_set_pass@1": [100.0 * x for x in per_set],
        "pass@k": {},
    }
    for k in ks:
        if k <= n:
            out["pass@k"][str(k)] = 100.0 * statistics.fmean(pass_at_k(n, sum(v), k) for v in correct.values())
    return out


def breakdown(problems: Sequence[Problem], correct: Mapping[str, Sequence[bool]], ks: Sequence[int],
              field: str) -> dict[str, dict[str, Any]]:
    """`score` per value of a problem field (difficulty, platform)."""
    groups: dict[str, dict[str, Sequence[bool]]] = defaultdict(dict)
    for p in problems:
        groups[str(getattr(p, field))][p.problem_id] = correct[p.problem_id]
    order = {"easy": 0, "medium": 1, "hard": 2}
    return {k: score(groups[k], ks) for k in sorted(groups, key=lambda g: (order.get(g, 9), g))}
