"""Stock clients work unchanged against `xcoder judge serve` (real Judge, server on 127.0.0.1):
the `sandbox-fusion` PyPI client, verl 0.9.1's `reward_score.sandbox_fusion.compute_score`, and
200 concurrent /run_code requests each answered with its own result."""

from __future__ import annotations

import concurrent.futures
import json
import statistics
import threading
import time

import pytest
import requests

from xcoder.judge.server import ServerSettings, serve_in_background

pytestmark = pytest.mark.slow

APLUSB = "a, b = map(int, input().split())\nprint(a + b)\n"
APLUSB_WRONG = "a, b = map(int, input().split())\nprint(a - b)\n"


@pytest.fixture(scope="module")
def url(judge):
    with serve_in_background(judge, ServerSettings.defaults(port=0)) as base:
        yield base


# ----- sandbox-fusion PyPI client ---------------------------------------------------------------


def test_sandbox_fusion_client_right_and_wrong_programs(url):
    from sandbox_fusion import (
        RunCodeRequest,
        RunStatus,
        SummaryMapping,
        run_code,
        set_endpoint,
        summary_run_code_result,
    )

    set_endpoint(url)
    ok = run_code(RunCodeRequest(code=APLUSB, language="python", stdin="20 22\n"))
    assert ok.status == RunStatus.Success and ok.run_result.stdout == "42\n"
    wrong = run_code(RunCodeRequest(code=APLUSB_WRONG, language="python", stdin="20 22\n"))
    assert wrong.status == RunStatus.Success and wrong.run_result.stdout != "42\n"
    crash = run_code(RunCodeRequest(code="raise SystemExit(4)", language="python"))
    assert crash.status == RunStatus.Failed and crash.run_result.return_code == 4

    mapping = SummaryMapping(Success="ok", Failed="failed", CompileFailed="ce", RunTimeout="tle", RunFailed="re")
    assert summary_run_code_result(ok, mapping) == "ok"
    assert summary_run_code_result(crash, mapping) == "re"
    tle = run_code(RunCodeRequest(code="import time\ntime.sleep(30)", language="python", run_timeout=1))
    assert summary_run_code_result(tle, mapping) == "tle"
    ce = run_code(RunCodeRequest(code="int main( {", language="cpp"))
    assert ce.run_result is None and summary_run_code_result(ce, mapping) == "ce"
    cpp = run_code(RunCodeRequest(code="#include <iostream>\nint main(){std::cout<<6*7<<std::endl;}", language="cpp"))
    assert cpp.status == RunStatus.Success and cpp.run_result.stdout == "42\n"


def test_sandbox_fusion_async_client(url):
    import asyncio

    from sandbox_fusion import RunCodeRequest, run_code_async

    async def both():
        return await asyncio.gather(
            run_code_async(RunCodeRequest(code="print('a')", language="python"), endpoint=url),
            run_code_async(RunCodeRequest(code="print('b')", language="python"), endpoint=url),
        )

    a, b = asyncio.run(both())
    assert (a.run_result.stdout, b.run_result.stdout) == ("a\n", "b\n")


# ----- verl 0.9.1 reward --------------------------------------------------------------------------


def _fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}```\n"


def test_verl_sandbox_fusion_compute_score(url):
    from verl.utils.reward_score.sandbox_fusion import compute_score

    endpoint = f"{url}/run_code"
    sem = threading.Semaphore(8)
    cases = json.dumps({"inputs": ["1 2\n", "5 5\n", "0 -3\n"], "outputs": ["3\n", "10\n", "-3\n"]})
    # verl's default memory_limit_mb=1024: must not break numpy (RLIMIT_AS would)
    numpy_sol = "import numpy as np\na, b = map(int, input().split())\nprint(int(np.int64(a) + b))\n"

    score, meta = compute_score(endpoint, sem, 1024, _fenced(APLUSB), cases, continuous=False, timeout=10)
    assert score == 1.0, meta
    score, meta = compute_score(endpoint, sem, 1024, _fenced(numpy_sol), cases, continuous=True, timeout=10)
    assert score == 1.0, meta
    score, _ = compute_score(endpoint, sem, 1024, _fenced(APLUSB_WRONG), cases, continuous=False, timeout=10)
    assert score == 0.0
    partial = "a, b = map(int, input().split())\nprint(a + b if a else 0)\n"
    score, _ = compute_score(endpoint, sem, 1024, _fenced(partial), cases, continuous=False, timeout=10)
    assert score == pytest.approx(2 / 3)
    score, meta = compute_score(endpoint, sem, 1024, _fenced("while True:\n    pass\n"), cases, timeout=1)
    assert score == 0.0 and {m["status"] for m in meta} == {"timeout"}
    score, meta = compute_score(endpoint, sem, 1024, _fenced("print(1/0)\n"), cases, timeout=10)
    assert score == 0.0 and {m["status"] for m in meta} == {"runtime_error"}
    score, meta = compute_score(endpoint, sem, 1024, _fenced(APLUSB_WRONG), cases, timeout=10)
    assert {m["status"] for m in meta} == {"wrong_answer"}


def test_verl_call_based_wrapper_runs_through_the_server(url):
    from verl.utils.reward_score.sandbox_fusion import compute_score

    sol = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
           "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
           "                return [seen[target - x], i]\n            seen[x] = i\n")
    cases = json.dumps({"fn_name": "twoSum", "inputs": ["[2,7,11,15]\n9", "[3,2,4]\n6"],
                        "outputs": ["[0, 1]", "[1, 2]"]})
    score, meta = compute_score(f"{url}/run_code", threading.Semaphore(4), 1024, _fenced(sol), cases, timeout=10)
    assert score == 1.0, meta
    wrong = sol.replace("[seen[target - x], i]", "[i, seen[target - x]]")
    score, _ = compute_score(f"{url}/run_code", threading.Semaphore(4), 1024, _fenced(wrong), cases, timeout=10)
    assert score == 0.0


# ----- 200 concurrent requests --------------------------------------------------------------------


def test_200_concurrent_run_code_each_gets_its_own_result(url, judge):
    from xcoder.judge import JudgeJob, JudgeTest, Limits, Program

    n = 200
    # distinct programs AND distinct stdin, so a swapped result cannot pass by accident
    programs = [(f"import sys\ntoken = {i * 7919}\nprint(token, sys.stdin.read().strip())\n",
                 f"stdin-{i}") for i in range(n)]
    barrier = threading.Barrier(n)
    session_local = threading.local()

    def one(i: int) -> tuple[int, float, dict]:
        code, stdin = programs[i]
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        barrier.wait(timeout=60)
        t0 = time.perf_counter()
        r = session.post(f"{url}/run_code", json={"code": code, "language": "python", "stdin": stdin}, timeout=300)
        return r.status_code, time.perf_counter() - t0, r.json()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    assert all(status == 200 for status, _, _ in answers)
    for i, (_, _, body) in enumerate(answers):
        assert body["status"] == "Success", body
        assert body["run_result"]["stdout"] == f"{i * 7919} stdin-{i}\n"
    latencies = sorted(lat for _, lat, _ in answers)
    # baseline in the same run: the same 200 programs straight through Judge.run_many (no HTTP)
    jobs = [JudgeJob(Program(code), [JudgeTest(input=stdin)], limits=Limits(time_s=10, memory_mb=2048)) for code,
            stdin in programs]
    t0 = time.perf_counter()
    direct = judge.run_many(jobs)
    direct_wall = time.perf_counter() - t0
    assert [r[0].stdout for r in direct] == [b["run_result"]["stdout"] for _, _, b in answers]
    health = requests.get(f"{url}/health", timeout=10).json()
    assert health["counters"].get("rejected_overload", 0) == 0
    print(
        f"\n200 concurrent /run_code: wall {wall:.2f} s, {n / wall:.1f} req/s, latency p50 "
        f"{statistics.median(latencies):.2f} s p99 {latencies[int(0.99 * n) - 1]:.2f} s max {latencies[-1]:.2f} s "
        f"(judge workers={health['workers']}, isolation={health['isolation']}); same programs via "
        f"Judge.run_many in-process: {direct_wall:.2f} s -> HTTP/in-process wall ratio {wall / direct_wall:.2f}"
    )
