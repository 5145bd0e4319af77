"""Sandbox judge: isolated execution of Python and C++ programs on tests.

Public API: `Judge`, `JudgeJob`, the types below, comparators in `xcoder.judge.compare`,
LiveCodeBench result codes via `lcb_code` / `lcb_result_list`; every judge a stage uses (local, Ray,
remote server) is built by `make_judge` / `judge_from_config` (`xcoder.judge.factory`).
"""

from xcoder.judge.factory import judge_from_config, make_judge
from xcoder.judge.judge import Judge, JudgeJob, profile_limits
from xcoder.judge.types import JudgeTest, Limits, Program, TestKind, TestResult, Verdict
from xcoder.judge.verdicts import LCB_CODES, lcb_code, lcb_result_list

__all__ = [
    "Judge",
    "JudgeJob",
    "JudgeTest",
    "LCB_CODES",
    "Limits",
    "Program",
    "TestKind",
    "TestResult",
    "Verdict",
    "judge_from_config",
    "lcb_code",
    "lcb_result_list",
    "make_judge",
    "profile_limits",
]
