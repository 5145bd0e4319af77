"""The GRPO code reward: judge the last code block of the final answer on ≤ k tests.

Two ways in:
- verl: `reward.custom_reward_function.path=<this file>`, `.name=compute_score`; verl's reward
  manager calls `compute_score(data_source=, solution_str=, ground_truth=, extra_info=,
  **reward_kwargs)` once per response (concurrently from threads); we return a dict with
  `"score"` and numeric diagnostics (verl logs every key; the key set is identical for every
  response so verl can stack them).
- batch: `CodeReward.score_batch(items)` grades all responses of a step through ONE
  `Judge.run_many` call and returns results keyed by response id (never by position), used by the
  ms-swift ORM plugin and the benchmark. Upstream misassigned ~25% of rewards by position
  (paper-recipe §12.1).

Scoring (paper-recipe §9): no code / unclosed fence / unfinished `<think>` / `ast.parse` failure →
`format_penalty` (−2); else `scale × passed / graded` (5 × fraction, partial) or `scale` iff all
pass (binary). The ≤ k tests are chosen deterministically per (task, epoch): all rollouts of a
prompt see the same tests.

Judge system errors (verdict SE: the sandbox failed, not the program) are never a silent 0
(upstream defect paper-recipe §12.4). Decision: SE tests are re-run up to `system_error_retries` times; tests
still SE are excluded from the denominator (the response is graded on the tests that ran); a
response whose every test is SE gets score 0.0 with `judge_error=1` (a distinct diagnostic), is
logged at ERROR and counted; and when more than `max_system_error_rate` of the responses in a
batch (or in the last 256 per-response calls) are such judge errors, `JudgeSystemError` is raised
— training on a broken judge stops instead of learning from noise.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xcoder.judge import JudgeJob, Limits, Program, TestResult, Verdict
from xcoder.judge.client import JudgeClient
from xcoder.judge.factory import make_judge
from xcoder.rl.extract import extract_code
from xcoder.rl.ground_truth import parse_ground_truth, select_tests, task_key

log = logging.getLogger(__name__)

FORMAT_FAILURES = ("no_code", "unclosed_fence", "syntax_error", "unfinished_think")
VERDICT_KEYS = tuple(v.value for v in Verdict)


class JudgeSystemError(RuntimeError):
    """Too many responses could not be graded because the judge itself failed."""


@dataclasses.dataclass(frozen=True)
class RewardSettings:
    """Reward knobs. Their defaults (the paper's) live in ONE place, `rl.reward` of
    configs/rl/default.yaml, each with its source: `RewardSettings.defaults(**changes)` reads them."""

    k: int  # tests graded per response; 0 = all
    mode: str  # partial: scale x passed/graded | binary: scale iff all pass
    scale: float
    format_penalty: float  # no code / unclosed fence / ast failure
    compare: str
    time_s: float  # per test
    memory_mb: int | None  # per test
    language: str
    seed: int  # seeds the per-(task, epoch) test subset
    system_error_retries: int
    max_system_error_rate: float
    abort_after_tle: bool  # opt-in, NOT the paper: a response whose first test hits TLE skips the rest
    judge_mode: str  # local | server
    judge_url: str | None
    judge_workers: int  # local mode: 0 = all cores of this process's node
    judge_isolation: str
    judge_concurrency: int  # server mode: requests in flight
    judge_token_env: str

    def __post_init__(self) -> None:
        if self.mode not in ("partial", "binary"):
            raise ValueError(f"reward mode must be 'partial' or 'binary', got {self.mode!r}")
        if self.k < 0:
            raise ValueError(f"reward k must be >= 0 (0 = all tests), got {self.k}")

    @classmethod
    def from_config(cls, reward: Any) -> RewardSettings:
        """`rl.reward` of the composed config as settings (the values verl passes as reward_kwargs)."""
        j = reward.judge
        return cls(
            k=int(reward.k), mode=str(reward.mode), scale=float(reward.scale),
            format_penalty=float(reward.format_penalty),
            compare=str(reward.compare), language=str(reward.language), time_s=float(reward.time_s),
            memory_mb=None if reward.memory_mb is None else int(reward.memory_mb), seed=int(reward.seed),
            system_error_retries=int(reward.system_error_retries),
            max_system_error_rate=float(reward.max_system_error_rate), abort_after_tle=bool(reward.abort_after_tle),
            judge_mode=str(j.mode), judge_url=str(j.url) if j.mode == "server" else None, judge_workers=int(j.workers),
            judge_isolation=str(j.isolation), judge_concurrency=int(j.concurrency), judge_token_env=str(j.token_env),
        )

    @classmethod
    def defaults(cls, **changes: Any) -> RewardSettings:
        """The `rl.reward` config defaults, with `changes` on top."""
        return dataclasses.replace(_config_defaults(), **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RewardSettings:
        """Settings from reward_kwargs / the swift plugin's JSON; a knob left out keeps its config default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown reward settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(values)) if set(values) == known else cls.defaults(**dict(values))

    @property
    def limits(self) -> Limits:
        return Limits(time_s=float(self.time_s), memory_mb=self.memory_mb)


@functools.lru_cache(maxsize=1)
def _config_defaults() -> RewardSettings:
    from xcoder.config import compose

    return RewardSettings.from_config(compose().rl.reward)


@dataclasses.dataclass(frozen=True)
class RewardItem:
    """One response to grade. `response_id` keys the result; it must be unique within a batch."""

    response_id: str
    response: str
    ground_truth: Any
    extra_info: Mapping[str, Any] | None = None
    epoch: int | None = None  # None: extra_info["epoch"] if present, else 0


@dataclasses.dataclass
class RewardResult:
    score: float
    passed: int = 0
    graded: int = 0  # tests with a real verdict (SE excluded)
    sampled: int = 0  # tests selected for this response
    n_tests: int = 0  # tests the task has
    format_failure: str | None = None
    judge_error: bool = False  # every sampled test was SE after retries
    verdicts: dict[str, int] = dataclasses.field(default_factory=dict)

    def as_verl_dict(self) -> dict[str, float]:
        """Fixed numeric key set for verl's reward_extra_info."""
        out: dict[str, float] = {
            "score": float(self.score),
            "passed": float(self.passed),
            "graded": float(self.graded),
            "sampled": float(self.sampled),
            "format_error": float(self.format_failure is not None),
            "judge_error": float(self.judge_error),
        }
        for name in FORMAT_FAILURES:
            out[f"fmt_{name}"] = float(self.format_failure == name)
        for v in VERDICT_KEYS:
            out[f"verdict_{v}"] = float(self.verdicts.get(v, 0))
        return out


class CodeReward:
    """Grades responses with a judge client. Thread-safe; counters in `stats`."""

    def __init__(self, settings: RewardSettings, client: JudgeClient | None = None) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or make_judge(
            settings.judge_mode, url=settings.judge_url, workers=settings.judge_workers,
            isolation=settings.judge_isolation, concurrency=settings.judge_concurrency,
            token_env=settings.judge_token_env,
        )
        self.stats: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[bool] = collections.deque(maxlen=256)
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------------------------
    def score_batch(self, items: Sequence[RewardItem]) -> dict[str, RewardResult]:
        """Grade all items with one `run_many`; results keyed by `response_id`."""
        ids = [it.response_id for it in items]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate response ids in reward batch: {dupes[:5]}")
        results: dict[str, RewardResult] = {}
        pending: dict[str, tuple[JudgeJob, list[int], int]] = {}  # id -> (job, selected idx, n_tests)
        for it in items:
            extraction = extract_code(it.response)
            suite = parse_ground_truth(it.ground_truth)  # a data bug: raise, naming the reason
            if extraction.code is None:
                results[it.response_id] = RewardResult(
                    score=self.settings.format_penalty, n_tests=len(suite.tests),
                    format_failure=extraction.failure,
                )
                continue
            epoch = it.epoch if it.epoch is not None else int((it.extra_info or {}).get("epoch") or 0)
            chosen = select_tests(len(suite.tests), self.settings.k,
                                  task_key(it.ground_truth, it.extra_info), epoch, self.settings.seed)
            job = JudgeJob(
                Program(extraction.code, language=self.settings.language),
                [suite.tests[i] for i in chosen],
                kind=suite.kind, fn_name=suite.fn_name, compare=suite.compare or self.settings.compare,
                limits=self.settings.limits,
            )
            pending[it.response_id] = (job, chosen, len(suite.tests))
        jobs = {rid: job for rid, (job, _, _) in pending.items()}
        outcomes = self._run_tle_first(jobs) if self.settings.abort_after_tle else self._run_with_retries(jobs)
        for rid, (_job, chosen, n_tests) in pending.items():
            results[rid] = self._grade(outcomes[rid], len(chosen), n_tests)
        self._account(results.values())
        return results

    def score_one(self, response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  epoch: int | None = None) -> RewardResult:
        return self.score_batch([RewardItem("0", response, ground_truth, extra_info, epoch)])["0"]

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # -- internals -----------------------------------------------------------------------------
    def _run_with_retries(self, jobs: dict[str, JudgeJob]) -> dict[str, list[TestResult]]:
        """Run every job; re-run only the SE tests (by id and test index) up to N times."""
        rids = list(jobs)
        batches = self.client.run_many([jobs[r] for r in rids]) if rids else []
        if len(batches) != len(rids):
            raise JudgeSystemError(f"judge returned {len(batches)} result lists for {len(rids)} jobs")
        outcomes = {rid: list(res) for rid, res in zip(rids, batches)}
        for rid in rids:
            if len(outcomes[rid]) != len(jobs[rid].tests):
                raise JudgeSystemError(f"judge returned {len(outcomes[rid])} results for {len(jobs[rid].tests)} tests")
        for attempt in range(self.settings.system_error_retries):
            retry = {rid: [i for i, r in enumerate(outcomes[rid]) if r.verdict == Verdict.SE] for rid in rids}
            retry = {rid: idx for rid, idx in retry.items() if idx}
            if not retry:
                break
            n = sum(len(v) for v in retry.values())
            with self._lock:
                self.stats["system_error_retries"] += n
            log.warning("reward: re-running %d tests that hit judge system errors (attempt %d)", n, attempt + 1)
            order = list(retry)
            again = self.client.run_many([
                dataclasses.replace(jobs[rid], tests=[jobs[rid].tests[i] for i in retry[rid]]) for rid in order
            ])
            if len(again) != len(order):
                raise JudgeSystemError(f"judge returned {len(again)} result lists for {len(order)} retried jobs")
            for rid, res in zip(order, again):
                if len(res) != len(retry[rid]):
                    raise JudgeSystemError(f"judge returned {len(res)} results for {len(retry[rid])} retried tests")
                for i, r in zip(retry[rid], res):
                    outcomes[rid][i] = dataclasses.replace(r, index=i)
        return outcomes

    def _run_tle_first(self, jobs: dict[str, JudgeJob]) -> dict[str, list[TestResult]]:
        """`abort_after_tle`: run every response's first test; only responses that did not hit the
        time limit run the rest. A TLE costs the full limit in any executor, so this bounds a
        looping program's cost to one limit instead of k (the score of a program that is slow on
        its first test but fast on others changes: opt-in, not the paper's rule)."""
        first = self._run_with_retries({rid: dataclasses.replace(job, tests=list(job.tests[:1])) for rid,
                                        job in jobs.items()})
        rest_ids = [rid for rid, job in jobs.items() if len(job.tests) > 1 and first[rid][0].verdict != Verdict.TLE]
        rest = self._run_with_retries({rid: dataclasses.replace(jobs[rid],
                                                                tests=list(jobs[rid].tests[1:])) for rid in rest_ids})
        outcomes: dict[str, list[TestResult]] = {}
        aborted = 0
        for rid, job in jobs.items():
            if rid in rest:
                outcomes[rid] = first[rid] + [dataclasses.replace(r, index=i + 1) for i, r in enumerate(rest[rid])]
            else:
                skipped = [TestResult(index=i, verdict=Verdict.TLE,
                                      message="not run: the first test exceeded the time limit "
                                      "(rl.reward.abort_after_tle)") for i in range(1, len(job.tests))]
                aborted += len(skipped)
                outcomes[rid] = first[rid] + skipped
        with self._lock:
            self.stats["tle_aborted_tests"] += aborted
        return outcomes

    def _grade(self, results: list[TestResult], sampled: int, n_tests: int) -> RewardResult:
        verdicts = collections.Counter(r.verdict.value for r in results)
        graded = sum(1 for r in results if r.verdict != Verdict.SE)
        passed = sum(1 for r in results if r.passed)
        if graded == 0:
            messages = {r.message for r in results if r.message}
            log.error("reward: judge system error on all %d tests of a response: %s", sampled,
                      "; ".join(sorted(messages))[:300])
            return RewardResult(0.0, 0, 0, sampled, n_tests, None, True, dict(verdicts))
        if self.settings.mode == "binary":
            score = self.settings.scale if passed == graded else 0.0
        else:
            score = self.settings.scale * passed / graded
        return RewardResult(score, passed, graded, sampled, n_tests, None, False, dict(verdicts))

    def _account(self, results: Iterable[RewardResult]) -> None:
        results = list(results)
        judged = [r for r in results if r.format_failure is None]
        errors = sum(r.judge_error for r in judged)
        with self._lock:
            self.stats["responses"] += len(results)
            self.stats["judge_error_responses"] += errors
            for r in results:
                if r.format_failure:
                    self.stats[f"format_{r.format_failure}"] += 1
                for v, n in r.verdicts.items():
                    self.stats[f"verdict_{v}"] += n
                if r.format_failure is None:
                    self._recent.append(r.judge_error)
            window = list(self._recent)
        rate_batch = errors / len(judged) if len(judged) >= 8 else 0.0
        rate_window = sum(window) / len(window) if len(window) >= 32 else 0.0
        rate = max(rate_batch, rate_window)
        if rate > self.settings.max_system_error_rate:
            raise JudgeSystemError(
                f"{rate:.1%} of graded responses hit judge system errors on every test "
                f"(limit max_system_error_rate={self.settings.max_system_error_rate}); the judge is broken, "
                f"stopping instead of training on noise. Counters: {dict(self.stats)}"
            )


# ---- verl entry point -----------------------------------------------------------------------
_SCORERS: dict[tuple, CodeReward] = {}  # one scorer (and judge) per reward process and settings
_SCORERS_LOCK = threading.Lock()


def scorer_for(reward_kwargs: Mapping[str, Any]) -> CodeReward:
    """Process-wide scorer for these settings (verl calls a plain function, so the judge pool
    must outlive a single call)."""
    key = tuple(sorted((k, repr(v)) for k, v in reward_kwargs.items()))
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = CodeReward(RewardSettings.from_mapping(reward_kwargs))
        return _SCORERS[key]


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None,
                  **reward_kwargs: Any) -> dict[str, float]:
    """verl `custom_reward_function`: score one response; `reward_kwargs` are `RewardSettings`."""
    reward_kwargs.pop("reward_router_address", None)
    reward_kwargs.pop("reward_model_tokenizer", None)
    result = scorer_for(reward_kwargs).score_one(solution_str, ground_truth, extra_info)
    return result.as_verl_dict()
