"""`xcoder judge serve` end to end: the real CLI in a subprocess, a request, a clean SIGTERM stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

XCODER = Path(sys.executable).with_name("xcoder")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        kids = _children(frontier.pop())
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_cli_serves_run_code_and_stops_cleanly_on_sigterm():
    proc = subprocess.Popen(
        [str(XCODER), "judge", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"no URL in first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        url = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/v1/ping", timeout=2).json() == "pong":
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not come up"
            time.sleep(0.1)
        body = requests.post(f"{url}/run_code", json={"code": "print(sum(range(10)))", "language": "python"},
                             timeout=30).json()
        assert body["status"] == "Success" and body["run_result"]["stdout"] == "45\n"
        assert requests.get(f"{url}/health", timeout=5).json()["workers"] == 1
        descendants = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert _wait_gone(descendants), f"judge processes left behind: {[p for p in descendants if _alive(p)]}"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/v1/ping", timeout=2)
    finally:
        if proc.poll() is None:
            for child in _children(proc.pid):
                os.kill(child, signal.SIGKILL)
            proc.kill()
            proc.wait()


def test_cli_refuses_remote_bind_without_token():
    env = {k: v for k, v in os.environ.items() if k != "XCODER_JUDGE_TOKEN"}
    proc = subprocess.run(
        [str(XCODER), "judge", "serve", "--host", "0.0.0.0", "--port", "0", "--allow-remote"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode != 0
    assert "XCODER_JUDGE_TOKEN" in proc.stderr
