"""Row builders for the two training files: SFT (ms-swift messages + query/response) and RL (verl).

RL `reward_model.ground_truth` is `{"kind", "fn_name", "tests": [{"input", "output", "weight"}], "compare"?}`
(records.py); call-based outputs are the JSON text of the return value, compared as values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from xcoder.records import RLRow, SFTRow, Solution, Task, Verification


def assistant_text(sol: Solution) -> str:
    """The assistant turn: the long reasoning in <think> tags, then the final answer with its code."""
    if sol.reasoning.strip():
        return f"<think>\n{sol.reasoning.strip()}\n</think>\n\n{sol.response.strip()}"
    return sol.response.strip()


def passing_solutions(ver: Verification, sols: Sequence[Solution]) -> list[Solution]:
    """Candidates that pass every final (labelled) test of a kept task, golden first."""
    matrix = json.loads(ver.pass_matrix)
    ok = [s for s in sols if matrix.get(s.solution_id) and all(matrix[s.solution_id])]
    ok.sort(key=lambda s: (s.solution_id != ver.golden_solution_id,))
    return ok


def teacher_pass_rate(ver: Verification) -> float:
    matrix = json.loads(ver.pass_matrix)
    if not matrix:
        return 0.0
    return sum(1 for row in matrix.values() if row and all(row)) / len(matrix)


def difficulty_bucket(pass_rate: float, buckets: dict[str, float]) -> str:
    """Highest bucket whose lower bound the pass rate reaches, e.g. {easy: .75, medium: .25, hard: 0}."""
    for name, lower in sorted(buckets.items(), key=lambda kv: -kv[1]):
        if pass_rate >= lower:
            return name
    return "unbucketed"


def sft_row(task: Task, sol: Solution, messages_prefix: list[dict[str, str]], features: str) -> SFTRow:
    answer = assistant_text(sol)
    user = next(m["content"] for m in messages_prefix if m["role"] == "user")
    return SFTRow(
        id=sol.solution_id, task_id=task.task_id, messages=[*messages_prefix, {"role": "assistant", "content": answer}],
        query=user, response=answer, style=task.style, teacher=sol.teacher, features=features,
        num_tokens=int(sol.num_tokens),
    )


# vote normalisation (synth.verify.vote.normalize) -> the judge comparator that accepts every output
# the vote counted as agreeing with the label (judge `lines` also strips leading spaces: never stricter)
VOTE_COMPARE = {"lcb": "lcb", "lines": "lines", "strip": "strip", "tokens": "tokens"}


def rl_row(task: Task, ver: Verification, prompt: list[dict[str, str]], *, index: int, data_source: str,
           pass_rate: float, difficulty: str, vote_normalize: str = "lines") -> RLRow:
    """One RL row. Its ground truth carries `compare`: labels are stored after the vote's
    normalisation (e.g. per-line trailing spaces removed), so the reward must compare the same way,
    or a correct program printing "1 2 \n" is WA against its own label under `strip`."""
    tests = json.loads(ver.tests)
    truth = {"kind": ver.kind, "fn_name": task.fn_name,
             "tests": [{"input": t["input"], "output": t["output"], "weight": t["weight"]} for t in tests]}
    if ver.kind == "stdio":  # call-based outputs are compared as JSON values by the judge
        if vote_normalize not in VOTE_COMPARE:
            raise ValueError(f"synth.verify.vote.normalize: unknown {vote_normalize!r} ({' | '.join(VOTE_COMPARE)})")
        truth["compare"] = VOTE_COMPARE[vote_normalize]
    return RLRow(
        data_source=data_source, prompt=prompt, ability="code",
        reward_model={"style": "rule", "ground_truth": json.dumps(truth, ensure_ascii=False)},
        extra_info={"task_id": task.task_id, "index": index, "style": task.style, "kind": ver.kind,
                    "fn_name": task.fn_name, "pass_rate": float(pass_rate), "difficulty": difficulty,
                    "confidence": confidence_of(ver), "verification": ver.evidence},
    )


def confidence_of(ver: Verification) -> float | None:
    """The verify stage's estimated precision for a kept task (None when it gave none)."""
    value = json.loads(ver.evidence or "{}").get("est_precision")
    return None if value is None else float(value)


def selected_features(task: Task) -> str:
    return json.dumps(json.loads(task.stage1).get("selected_features_tree", {}), ensure_ascii=False)


def order_rows(rows: list[tuple[float, Any]], order: str) -> list[Any]:
    """none: task order | pass_rate_desc: easy first (curriculum) | pass_rate_asc: hard first."""
    if order == "none":
        return [r for _, r in rows]
    if order not in ("pass_rate_desc", "pass_rate_asc"):
        raise ValueError(f"synth.export.rl.order: unknown {order!r} (none | pass_rate_desc | pass_rate_asc)")
    return [r for _, r in sorted(rows, key=lambda x: -x[0] if order == "pass_rate_desc" else x[0])]
