"""The judge contract every judge honours, and the HTTP client of a remote `xcoder judge serve`.

`Judge`, `RayJudgePool` and `RemoteJudgeClient` all expose `run_many(jobs) -> list[list[TestResult]]`
in job order and `close()`. The HTTP client retries transport failures and 5xx/503 answers with
back-off; a request that still fails comes back as SE verdicts (the judge failed, not the program),
never as WA. Build any of them with `xcoder.judge.factory.make_judge`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from xcoder.judge.judge import JudgeJob
from xcoder.judge.types import TestResult, Verdict

log = logging.getLogger(__name__)


class JudgeClient(Protocol):
    """What a stage needs from a judge, wherever it runs."""

    def run_many(self, jobs: Sequence[JudgeJob]) -> list[list[TestResult]]: ...

    def close(self) -> None: ...


class RemoteJudgeClient:
    """`POST {url}/v1/judge/batch` per program, `concurrency` requests in flight."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 64,
        timeout_s: float = 900.0,
        retries: int = 3,
        token_env: str = "XCODER_JUDGE_TOKEN",
    ) -> None:
        import requests

        self.url = url.rstrip("/") + "/v1/judge/batch"
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        token = os.environ.get(token_env, "")
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="judge-http")

    def _payload(self, job: JudgeJob) -> dict[str, Any]:
        limits = job.limits
        return {
            "program": {"code": job.program.code, "language": job.program.language},
            "tests": [{"input": t.input, "output": t.output, "code": t.code} for t in job.tests],
            "kind": job.kind,
            "fn_name": job.fn_name,
            "compare": job.compare,
            "limits": {
                "time_s": limits.time_s, "cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb,
                "output_bytes": limits.output_bytes, "max_processes": limits.max_processes,
                "file_size_bytes": limits.file_size_bytes, "open_files": limits.open_files,
            },
            "stop_on_first_failure": job.stop_on_first_failure,
        }

    def _one(self, job: JudgeJob) -> list[TestResult]:
        import requests

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(30.0, 2.0**attempt))
            try:
                resp = self.session.post(self.url, json=self._payload(job), timeout=self.timeout_s)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 200:
                return [_result_from_json(r) for r in resp.json()["results"]]
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code < 500:  # our request is wrong: retrying cannot help
                break
        log.error("judge server %s failed after %d attempts: %s", self.url, self.retries + 1, last)
        return [TestResult(index=i, verdict=Verdict.SE, message=f"judge server: {last}") for i in range(len(job.tests))]

    def run_many(self, jobs: Sequence[JudgeJob]) -> list[list[TestResult]]:
        return list(self.pool.map(self._one, jobs))

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.session.close()


def _result_from_json(data: dict[str, Any]) -> TestResult:
    fields = dict(data)
    fields["verdict"] = Verdict(fields["verdict"])
    return TestResult(**fields)
