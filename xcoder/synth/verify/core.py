"""Dual verification as pure functions over a candidates x tests output table.

Two rules, both over the same recorded outputs (nothing is re-executed):

- `paper` (X-Coder's rule): step 1 labels every test input by a plurality vote over the outputs of
  the candidates that ran cleanly (failed runs never vote), with a minimum support and agreement
  and a seeded tie rule; step 2 picks a golden solution on one half of the weighted tests and
  validates it on the held-out half.
- `consensus` (the default, measured on real candidate pools, data-recipe/README.md): candidates
  that contradict a statement sample with a known output never vote (AlphaCode's filter); the
  golden is the voter that agrees with the most other voters over all tests (CodeT's consensus
  score without model-written outputs); its agreement cluster (voters with identical outputs on
  every test) must be large relative to n and clearly ahead of the runner-up cluster, and the
  golden must run cleanly on nearly every input (no partly labelled suites). Labels are the
  golden's outputs, so a kept task's labels and golden agree by construction.

Outputs are compared under the equality grading uses (`output_key`): call-based values as Python's
`==` sees them (1 == 1.0 == True), stdio as LiveCodeBench's `grade_stdio` does (line-wise, numeric
tokens as Decimals). Sanity filters reject tasks whose labels look broken (empty call-based
outputs, constant outputs, too few tests). Every verdict carries its evidence (cluster sizes,
agreement, sample agreement) for confidence filtering downstream.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from xcoder.synth.common import stable_hash


@dataclasses.dataclass(frozen=True)
class VoteConfig:
    min_support: int = 2  # votes the winning output needs (upstream: 1, no minimum) [paper-recipe §6, U]
    min_agreement: float = 0.5  # winner's share of successful runs [U]
    tie_break: str = "seeded"  # seeded | lexical | drop (upstream: unseeded random.choice) [paper-recipe §6]
    # stdio equality: lcb (grading's: lines, numeric tokens as Decimals) | lines | strip | tokens
    normalize: str = "lcb"
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class ConsensusConfig:
    """The `consensus` rule's thresholds (data-recipe/README.md: what each costs in coverage)."""

    anchor_samples: bool = True  # a candidate contradicting a statement sample's known output never votes
    min_cluster: int = 2  # voters in the golden's agreement cluster
    min_cluster_share: float = 0.375  # ... as a share of all n candidates (not only the voters)
    min_margin: float = 3.0  # golden cluster size / runner-up cluster size
    max_golden_failed: float = 0.1  # golden fails (crash/TLE) on more than this share of inputs -> reject


@dataclasses.dataclass(frozen=True)
class GoldenConfig:
    weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"plain": 1.0, "small": 1.0, "edge": 2.0, "stress": 2.0}
    )
    select_fraction: float = 0.5  # share of tests used to select the golden (paper: 50/50 split) [S]
    min_select_score: float = 0.5  # weighted pass rate the golden needs on the selection half [U]
    min_holdout_pass: float = 0.8  # weighted pass rate the golden needs on the held-out half [U]
    drop_golden_disagreements: bool = True  # keep only tests whose label the golden reproduces
    min_tests: int = 5  # fewer surviving tests -> reject
    empty_call_outputs: tuple[str, ...] = ("null", '""')  # call-based labels that count as empty
    max_empty_fraction: float = 0.5  # more empty-labelled tests than this -> reject the task
    reject_constant_outputs: bool = True  # every label identical (>= 3 tests) -> reject
    seed: int = 42


@dataclasses.dataclass
class TestVote:
    __test__ = False

    label: str | None  # normalised winning output, None if the test is unusable
    counts: list[int]  # vote counts per distinct output, descending
    successes: int  # candidates that ran cleanly
    support: int  # votes of the winner
    agreement: float  # support / successes
    has_tie: bool
    reason: str = ""  # why label is None: no_success | low_support | low_agreement | tie


def normalize_output(text: str, kind: str, mode: str = "lines") -> str | None:
    """Canonical display form of one output (what a label stores); None if it cannot be read
    (call: not JSON). Equality for voting is `output_key` over this form."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "call":
        try:
            return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except (json.JSONDecodeError, ValueError):
            return None
    if mode == "strip":
        return text.strip()
    if mode == "tokens":
        return " ".join(text.split())
    if mode in ("lines", "lcb"):
        return "\n".join(line.rstrip() for line in text.strip().split("\n"))
    raise ValueError(f"unknown normalize mode {mode!r} (lcb | lines | strip | tokens)")


def _python_equal_form(value: Any) -> Any:
    """A JSON value rewritten so that equal forms <=> Python `==` on the originals (True == 1 == 1.0)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_python_equal_form(v) for v in value]
    if isinstance(value, dict):
        return {k: _python_equal_form(v) for k, v in value.items()}
    return value


def _decimal_form(token: str) -> str:
    value = Decimal(token)
    return "0" if value.is_zero() else str(value.normalize())  # Decimal("-0") == Decimal("0")


def _lcb_line_form(line: str) -> str:
    try:
        return "\x00".join(_decimal_form(token) for token in line.split()) if line else line
    except (InvalidOperation, ValueError):
        return line


def output_key(display: str | None, kind: str, mode: str = "lcb") -> str | None:
    """Equality key of a normalised output: two outputs get the same key exactly when grading
    (`xcoder.judge.compare`) counts them equal — call: LiveCodeBench's `pred == json.loads(exp)`;
    stdio `lcb`: `grade_stdio` (stripped lines, numeric tokens compared as Decimals)."""
    if display is None:
        return None
    if kind == "call":
        return json.dumps(_python_equal_form(json.loads(display)), sort_keys=True, separators=(",", ":"))
    if mode == "lcb":
        return "\n".join(_lcb_line_form(line.strip()) for line in display.strip().split("\n"))
    return display


def vote_test(outputs: Sequence[str | None], cfg: VoteConfig, key: str) -> TestVote:
    """Plurality vote over one test's outputs (None = failed run, excluded)."""
    good = [o for o in outputs if o is not None]
    if not good:
        return TestVote(None, [], 0, 0, 0.0, False, "no_success")
    counter = collections.Counter(good)
    ranked = counter.most_common()
    top = ranked[0][1]
    leaders = sorted(o for o, c in ranked if c == top)
    has_tie = len(leaders) > 1
    counts = [c for _, c in ranked]
    agreement = top / len(good)
    if has_tie:
        if cfg.tie_break == "drop":
            return TestVote(None, counts, len(good), top, agreement, True, "tie")
        if cfg.tie_break == "lexical":
            winner = leaders[0]
        elif cfg.tie_break == "seeded":
            winner = random.Random(stable_hash(cfg.seed, key)).choice(leaders)
        else:
            raise ValueError(f"unknown tie_break {cfg.tie_break!r} (seeded | lexical | drop)")
    else:
        winner = leaders[0]
    if top < cfg.min_support:
        return TestVote(None, counts, len(good), top, agreement, has_tie, "low_support")
    if agreement < cfg.min_agreement:
        return TestVote(None, counts, len(good), top, agreement, has_tie, "low_agreement")
    return TestVote(winner, counts, len(good), top, agreement, has_tie)


def split_halves(test_ids: Sequence[str], tags: Sequence[str], fraction: float, seed: int) -> list[bool]:
    """True = selection half. Seeded shuffle within each tag, so both halves see every tag."""
    in_select = [False] * len(test_ids)
    by_tag: dict[str, list[int]] = collections.defaultdict(list)
    for i, tag in enumerate(tags):
        by_tag[tag].append(i)
    offset = 0
    for tag in sorted(by_tag):
        idx = sorted(by_tag[tag], key=lambda i: stable_hash(seed, test_ids[i]))
        # alternate rounding across tags so small groups do not all land in one half
        n_sel = int(len(idx) * fraction + (0.5 if offset % 2 == 0 else 0.49))
        for i in idx[:n_sel]:
            in_select[i] = True
        offset += 1
    return in_select


def weighted_rate(passes: Sequence[bool], weights: Sequence[float], mask: Sequence[bool]) -> float:
    total = sum(w for w, m in zip(weights, mask) if m)
    if total <= 0:
        return 0.0
    return sum(w for p, w, m in zip(passes, weights, mask) if m and p) / total


@dataclasses.dataclass
class TaskVerdict:
    status: str  # kept | rejected
    reason: str
    tests: list[dict[str, Any]]  # final labelled tests (kept) or the voted ones (rejected, for audit)
    votes: list[dict[str, Any]]
    pass_matrix: dict[str, list[bool]]
    golden_index: int | None
    golden_select_score: float
    golden_holdout_pass: float
    counts: dict[str, int]  # test-level drop reasons
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)  # why to trust it (see `_evidence`)


@dataclasses.dataclass
class _Table:
    """One task's outputs in display form and under grading's equality, plus the known outputs."""

    display: list[list[str | None]]
    keys: list[list[str | None]]
    expected: list[str | None]  # key of a test's known output (statement sample), else None

    @classmethod
    def build(cls, kind: str, mode: str, tests: Sequence[dict[str, Any]],
              outputs: Sequence[Sequence[str | None]]) -> _Table:
        display = [[None if o is None else normalize_output(o, kind, mode) for o in row] for row in outputs]
        keys = [[output_key(d, kind, mode) for d in row] for row in display]
        expected = []
        for t in tests:
            raw = t.get("expected")
            disp = normalize_output(raw, kind, mode) if raw is not None else None
            expected.append(output_key(disp, kind, mode))
        return cls(display, keys, expected)

    def representative(self, j: int, key: str) -> str:
        """The display form of `key` on test j: the first candidate's that produced it."""
        return next(row[j] for row, krow in zip(self.display, self.keys) if krow[j] == key)


def verify_outputs(
    *,
    task_id: str,
    kind: str,
    candidate_ids: Sequence[str],
    tests: Sequence[dict[str, Any]],
    outputs: Sequence[Sequence[str | None]],
    vote_cfg: VoteConfig,
    golden_cfg: GoldenConfig,
    consensus_cfg: ConsensusConfig | None = None,
) -> TaskVerdict:
    """Label, select and filter one task. `tests[j]` has test_id, input, tag (and `expected`, the
    known output of a statement sample, when there is one); `outputs[i][j]` is the raw output of
    candidate i on test j, None when that run failed (any verdict but AC). `consensus_cfg` selects
    the consensus rule; None runs the paper's rule."""
    if not candidate_ids:
        return _reject("no_candidates", {})
    if not tests:
        return _reject("no_tests", {})
    table = _Table.build(kind, vote_cfg.normalize, tests, outputs)
    if consensus_cfg is not None:
        return _verify_consensus(task_id, kind, candidate_ids, tests, table, vote_cfg, golden_cfg, consensus_cfg)
    return _verify_paper(task_id, kind, candidate_ids, tests, table, vote_cfg, golden_cfg)


def _reject(reason: str, counts: dict[str, int], **kw: Any) -> TaskVerdict:
    base: dict[str, Any] = dict(tests=[], votes=[], pass_matrix={}, golden_index=None, golden_select_score=0.0,
                                golden_holdout_pass=0.0, counts=dict(counts))
    base.update(kw)
    return TaskVerdict("rejected", reason, **base)


def _vote_json(tests: Sequence[dict[str, Any]], votes: Sequence[TestVote]) -> list[dict[str, Any]]:
    return [{"test_id": t["test_id"], "counts": v.counts, "successes": v.successes, "support": v.support,
             "agreement": round(v.agreement, 4), "has_tie": v.has_tie, "reason": v.reason}
            for t, v in zip(tests, votes)]


def _label_filters(kind: str, labels: Sequence[str], empty: int, cfg: GoldenConfig) -> str:
    """The sanity filters on a task's final labels: the reason to reject, or ""."""
    labelled = empty + len(labels)
    if labelled and empty / labelled > cfg.max_empty_fraction:
        return "empty_outputs"
    if len(labels) < cfg.min_tests:
        return "too_few_tests"
    if cfg.reject_constant_outputs and len(labels) >= 3 and len(set(labels)) == 1:
        return "constant_output"
    return ""


def _verify_paper(task_id: str, kind: str, candidate_ids: Sequence[str], tests: Sequence[dict[str, Any]],
                  table: _Table, vote_cfg: VoteConfig, golden_cfg: GoldenConfig) -> TaskVerdict:
    """X-Coder's rule: per-test plurality labels, golden chosen on one half, checked on the other."""
    counts: collections.Counter[str] = collections.Counter()
    keys = table.keys
    votes = [vote_test([row[j] for row in keys], vote_cfg, f"{task_id}:{t['test_id']}") for j, t in enumerate(tests)]
    vote_json = _vote_json(tests, votes)
    if all(v.successes == 0 for v in votes):
        return _reject("all_candidates_failed", counts, votes=vote_json)
    keep: list[int] = []
    empty = 0
    labels_display = {}
    for j, v in enumerate(votes):
        if v.label is None:
            counts[f"test_{v.reason}"] += 1
            continue
        labels_display[j] = table.representative(j, v.label)
        if _is_empty(labels_display[j], kind, golden_cfg):
            counts["test_empty_output"] += 1
            empty += 1
        else:
            keep.append(j)
    reason = _label_filters(kind, [votes[j].label for j in keep], empty, golden_cfg)
    if reason:
        return _reject(reason, counts, votes=vote_json)

    kept_tests = [tests[j] for j in keep]
    weights = [golden_cfg.weights.get(t.get("tag", "plain"), 1.0) for t in kept_tests]
    passes = [[keys[i][j] == votes[j].label for j in keep] for i in range(len(candidate_ids))]
    select = split_halves([t["test_id"] for t in kept_tests], [t.get("tag", "plain") for t in kept_tests],
                          golden_cfg.select_fraction, golden_cfg.seed)
    hold = [not s for s in select]
    scores = [weighted_rate(p, weights, select) for p in passes]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties -> lowest index
    holdout = weighted_rate(passes[best], weights, hold) if any(hold) else scores[best]
    matrix = {cid: p for cid, p in zip(candidate_ids, passes)}
    common = dict(votes=vote_json, pass_matrix=matrix, golden_index=best,
                  golden_select_score=scores[best], golden_holdout_pass=holdout)
    audit = [_test_json(t, labels_display[j], votes[j].agreement, w, "select" if s else "holdout")
             for t, j, w, s in zip(kept_tests, keep, weights, select)]
    evidence = _evidence(table, tests, best, keep, len(candidate_ids))
    if scores[best] < golden_cfg.min_select_score:
        return _reject("golden_low_select_score", counts, tests=audit, evidence=evidence, **common)
    if holdout < golden_cfg.min_holdout_pass:
        return _reject("golden_failed_holdout", counts, tests=audit, evidence=evidence, **common)
    final = list(range(len(keep)))
    if golden_cfg.drop_golden_disagreements:
        final = [k for k in final if passes[best][k]]
        counts["test_golden_disagrees"] += len(keep) - len(final)
        if len(final) < golden_cfg.min_tests:
            return _reject("too_few_tests", counts, tests=audit, evidence=evidence, **common)
    final_tests = [audit[k] for k in final]
    common["pass_matrix"] = {cid: [p[k] for k in final] for cid, p in zip(candidate_ids, passes)}
    return TaskVerdict("kept", "", tests=final_tests, counts=dict(counts), evidence=evidence, **common)


def _verify_consensus(task_id: str, kind: str, candidate_ids: Sequence[str], tests: Sequence[dict[str, Any]],
                      table: _Table, vote_cfg: VoteConfig, golden_cfg: GoldenConfig,
                      cfg: ConsensusConfig) -> TaskVerdict:
    """Sample-anchored consensus: the golden is the best-agreeing voter; labels are its outputs."""
    counts: collections.Counter[str] = collections.Counter()
    keys, n, m = table.keys, len(candidate_ids), len(tests)
    anchored = [j for j in range(m) if table.expected[j] is not None] if cfg.anchor_samples else []
    free = [j for j in range(m) if j not in set(anchored)]
    votes = [vote_test([row[j] for row in keys], vote_cfg, f"{task_id}:{t['test_id']}") for j, t in enumerate(tests)]
    vote_json = _vote_json(tests, votes)
    if all(v.successes == 0 for v in votes):
        return _reject("all_candidates_failed", counts, votes=vote_json)
    ran = [i for i in range(n) if any(keys[i][j] is not None for j in free)]
    voters = [i for i in ran if all(keys[i][j] == table.expected[j] for j in anchored)]
    evidence: dict[str, Any] = {"n": n, "voters": len(voters), "sample_tests": len(anchored),
                                "sample_consistent": len(voters) if anchored else None}
    if not voters:
        reason = "samples_contradicted" if anchored and ran else "all_candidates_failed"
        return _reject(reason, counts, votes=vote_json, evidence=evidence)
    tally = [collections.Counter(keys[i][j] for i in voters if keys[i][j] is not None) for j in range(m)]
    score = {i: sum(tally[j][keys[i][j]] for j in free if keys[i][j] is not None) for i in voters}
    golden = max(voters, key=lambda i: (score[i], -i))  # ties -> lowest index
    signature = {i: tuple(keys[i][j] for j in free) for i in voters}
    clusters = collections.Counter(signature.values())
    top = clusters[signature[golden]]
    runner_up = max((c for sig, c in clusters.items() if sig != signature[golden]), default=0)
    evidence.update(cluster_sizes=sorted(clusters.values(), reverse=True)[:8], cluster=top,
                    cluster_share=round(top / n, 4), margin=round(top / runner_up, 4) if runner_up else None)
    labelled = [j for j in range(m) if keys[golden][j] is not None]
    failed_share = 1 - len(labelled) / m
    evidence["golden_failed_share"] = round(failed_share, 4)
    agreement = {j: tally[j][keys[golden][j]] / max(1, sum(tally[j].values())) for j in labelled}
    evidence.update(_evidence(table, tests, golden, labelled, n))
    pass_matrix = {cid: [keys[i][j] == keys[golden][j] for j in labelled] for i, cid in enumerate(candidate_ids)}
    common: dict[str, Any] = dict(votes=vote_json, pass_matrix=pass_matrix, golden_index=golden,
                                  golden_select_score=round(top / n, 4), golden_holdout_pass=1.0 - failed_share)
    if top < cfg.min_cluster:
        return _reject("low_support", counts, evidence=evidence, **common)
    if top < cfg.min_cluster_share * n:
        return _reject("low_agreement", counts, evidence=evidence, **common)
    if runner_up and top < cfg.min_margin * runner_up:
        return _reject("contested", counts, evidence=evidence, **common)
    if failed_share > cfg.max_golden_failed:
        return _reject("partly_labelled", counts, evidence=evidence, **common)
    counts["test_golden_failed"] += m - len(labelled)
    keep, empty = [], 0
    for j in labelled:
        if _is_empty(table.display[golden][j], kind, golden_cfg):
            empty += 1
            counts["test_empty_output"] += 1
        else:
            keep.append(j)
    reason = _label_filters(kind, [keys[golden][j] for j in keep], empty, golden_cfg)
    final = [_test_json(tests[j], table.display[golden][j], agreement[j],
                        golden_cfg.weights.get(tests[j].get("tag", "plain"), 1.0), "consensus") for j in keep]
    if reason:
        return _reject(reason, counts, tests=final, evidence=evidence, **common)
    common["pass_matrix"] = {cid: [keys[i][j] == keys[golden][j] for j in keep] for i, cid in enumerate(candidate_ids)}
    return TaskVerdict("kept", "", tests=final, counts=dict(counts), evidence=evidence, **common)


def _evidence(table: _Table, tests: Sequence[dict[str, Any]], golden: int, labelled: Sequence[int],
              n: int) -> dict[str, Any]:
    """What a user filters on later: how many candidates agree with the golden on every labelled
    test, how strong the per-test agreement is, and whether the golden reproduces the samples."""
    keys = table.keys
    full = sum(all(row[j] == keys[golden][j] for j in labelled) for row in keys)
    per_test = []
    for j in labelled:
        ok = [row[j] for row in keys if row[j] is not None]
        per_test.append(sum(k == keys[golden][j] for k in ok) / len(ok) if ok else 0.0)
    anchored = [j for j, e in enumerate(table.expected) if e is not None]
    return {
        "full_agreement": full,
        "full_agreement_share": round(full / n, 4) if n else 0.0,
        "mean_test_agreement": round(sum(per_test) / len(per_test), 4) if per_test else 0.0,
        "min_test_agreement": round(min(per_test), 4) if per_test else 0.0,
        "samples_known": len(anchored),
        "golden_passes_samples": all(keys[golden][j] == table.expected[j] for j in anchored) if anchored else None,
    }


def _is_empty(label: str, kind: str, cfg: GoldenConfig) -> bool:
    if kind == "call":
        return label in cfg.empty_call_outputs
    return not label.strip()


def _test_json(test: dict[str, Any], label: str, agreement: float, weight: float, half: str) -> dict[str, Any]:
    return {
        "test_id": test["test_id"],
        "input": test["input"],
        "output": label,
        "weight": weight,
        "tag": test.get("tag", "plain"),
        "source": test.get("source", ""),
        "agreement": round(agreement, 4),
        "half": half,
    }
