"""Server pieces without a running server: bind/token rules, settings, admission bounds and the
verdict -> SandboxFusion status mapping (fast unit tests; the HTTP behaviour is in test_server.py)."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from xcoder.judge.sandboxfusion import to_run_code_response
from xcoder.judge.server import ServeRefused, ServerSettings, add_serve_arguments, resolve_token, run_server
from xcoder.judge.types import TestResult, Verdict


def _wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_sandbox_error_maps_to_sandboxerror_status():
    """SE (the judge failed) must never look like the program's fault."""
    resp = to_run_code_response(TestResult(index=0, verdict=Verdict.SE, message="worker died"), "python")
    assert resp.status.value == "SandboxError" and "worker died" in resp.message
    assert resp.run_result is not None and resp.run_result.status.value == "Error"
    ole = to_run_code_response(TestResult(index=0, verdict=Verdict.OLE, exit_code=None, signal=None), "python")
    assert ole.status.value == "Failed" and ole.run_result.return_code != 0


def test_non_loopback_bind_needs_allow_remote_and_token():
    with pytest.raises(ServeRefused, match="--allow-remote"):
        resolve_token(ServerSettings.defaults(host="0.0.0.0"), environ={"XCODER_JUDGE_TOKEN": "s3cret"})
    with pytest.raises(ServeRefused, match="XCODER_JUDGE_TOKEN"):
        resolve_token(ServerSettings.defaults(host="0.0.0.0", allow_remote=True), environ={})
    assert resolve_token(ServerSettings.defaults(host="0.0.0.0", allow_remote=True),
                         environ={"XCODER_JUDGE_TOKEN": "s3cret"}) == "s3cret"
    assert resolve_token(ServerSettings.defaults(host="127.0.0.1"), environ={}) is None
    assert resolve_token(ServerSettings.defaults(host="::1"), environ={}) is None


def test_serve_cli_refuses_remote_bind_with_clear_message(capsys, monkeypatch):
    monkeypatch.delenv("MY_JUDGE_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert run_server(parser.parse_args(["--host", "0.0.0.0", "--port", "0"])) == 2
    assert "--allow-remote" in capsys.readouterr().err
    args = parser.parse_args(["--host", "0.0.0.0", "--allow-remote", "--token-env", "MY_JUDGE_TOKEN"])
    assert run_server(args) == 2
    assert "MY_JUDGE_TOKEN" in capsys.readouterr().err


def test_config_defaults_feed_the_cli_flags():
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.allow_remote) == ("127.0.0.1", 8080, False)
    assert ServerSettings.from_args(args).queue_size >= 256  # above verl's max_concurrent=64 default


def test_dispatcher_bounds_queued_bytes_but_always_admits_one():
    from xcoder.judge.server import Dispatcher, Overloaded, ServerStats

    release = threading.Event()
    d = Dispatcher(1, 10, ServerStats(), max_queued_bytes=100)
    try:
        big = d.submit(lambda: release.wait(10), threading.Event(), size_bytes=500)  # alone: admitted
        with pytest.raises(Overloaded):
            d.submit(lambda: None, threading.Event(), size_bytes=1)
        release.set()
        big.result(10)
        assert _wait_until(lambda: d.depth["admitted_bytes"] == 0)
        small = [d.submit(lambda: 7, threading.Event(), size_bytes=40) for _ in range(2)]
        assert [f.result(10) for f in small] == [7, 7]
    finally:
        release.set()
        d.close()


def test_settings_reject_bad_values_and_unknown_keys():
    with pytest.raises(ValueError, match="overload_status"):
        ServerSettings.defaults(overload_status=500)
    with pytest.raises(ValueError, match="default_memory_mb"):
        ServerSettings.defaults(default_memory_mb=9000, max_memory_mb=4096)
    with pytest.raises(ValueError, match="unknown judge.server keys"):
        ServerSettings.from_config({"host": "127.0.0.1", "qeue_size": 3})
