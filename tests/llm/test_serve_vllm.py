"""scripts/serve_vllm.sh: GPU grouping from config/flags, readiness by polling, clean shutdown.

vLLM needs GPUs, so the readiness test stands the fake OpenAI server in for `vllm serve` (it
accepts and ignores vLLM's flags); the script's logic is the same.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "serve_vllm.sh"


def run(*args, env=None, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def test_dry_run_groups_gpus_by_tp_and_takes_config_overrides(tmp_path):
    out = run("--gpus", "8", "--dry-run", "--log-dir", str(tmp_path), "llm.serve.tensor_parallel=2",
              "llm.model=Qwen/Qwen3-8B", "--", "--enforce-eager")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:4]] == [f"CUDA_VISIBLE_DEVICES={a},{a + 1}" for a in (0, 2, 4, 6)]
    assert "Qwen/Qwen3-8B --host 127.0.0.1 --port 8003 --tensor-parallel-size 2" in lines[3]
    assert lines[0].rstrip(" &").split(" > ")[0].endswith("--enforce-eager")
    assert lines[-1] == "llm.endpoints=[" + ",".join(f"http://127.0.0.1:{8000 + i}/v1" for i in range(4)) + "]"


@pytest.mark.parametrize("args, message", [
    (["--gpus", "1", "--tp", "2"], "needs tp*dp=2"),
    (["--gpus", "2", "--host", "0.0.0.0"], "shared token"),
    (["--gpus", "2", "--tp", "zero"], "positive integer"),
    (["--gpus", "2", "llm.serve.no_such=1"], "cannot read llm.serve"),
])
def test_refuses_bad_settings(args, message):
    out = run(*args, "--dry-run")
    assert out.returncode == 2 and message in out.stderr


def free_base_port(n=2):
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65535 and all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port range")


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_waits_for_readiness_prints_endpoints_and_stops_servers(tmp_path):
    base = free_base_port()
    fake = f"{sys.executable} -m xcoder.llm.fake_server"
    proc = subprocess.Popen(["bash", str(SCRIPT), "--gpus", "2", "--tp", "1", "--base-port", str(base),
                             "--vllm-cmd", fake, "--log-dir", str(tmp_path), "llm.model=served-model"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while not lines or not lines[-1].startswith("llm.endpoints="):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            lines.append(proc.stdout.readline().strip())
        urls = [f"http://127.0.0.1:{base + i}/v1" for i in range(2)]
        assert sorted(lines[:-1]) == [f"READY {u}" for u in urls]
        assert lines[-1] == f"llm.endpoints=[{','.join(urls)}]"
        for url in urls:  # ready means answering
            models = json.loads(urllib.request.urlopen(f"{url}/models", timeout=5).read())
            assert models["data"][0]["id"] == "served-model"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode != 0  # signalled
    deadline = time.monotonic() + 10
    while any(_listening(base + i) for i in range(2)):
        assert time.monotonic() < deadline, "servers still listening after the script stopped"
        time.sleep(0.1)


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_dying_before_ready_is_reported(tmp_path):
    out = run("--gpus", "1", "--tp", "1", "--base-port", str(free_base_port(1)), "--vllm-cmd", "false",
              "--log-dir", str(tmp_path))
    assert out.returncode == 1 and "exited before it was ready" in out.stderr


SLOW_SERVER = r'''
import http.server, pathlib, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
seen = pathlib.Path(sys.argv[-1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.write_text(self.headers.get("Authorization") or "none")
        time.sleep(3)  # curl stays alive meanwhile: the test reads `ps` now
        body = b'{"data": [{"id": "m"}]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def test_readiness_probe_sends_the_key_without_putting_it_on_any_command_line(tmp_path):
    token = "sk-serve-" + os.urandom(8).hex()
    server = tmp_path / "slow_server.py"
    server.write_text(SLOW_SERVER)
    seen = tmp_path / "authorization.txt"
    proc = subprocess.Popen(["bash", str(SCRIPT), "--gpus", "1", "--tp", "1", "--base-port", str(free_base_port(1)),
                             "--vllm-cmd", f"{sys.executable} {server}", "--api-key-env", "XCODER_TEST_SERVE_KEY",
                             "--log-dir", str(tmp_path), "--", str(seen)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "XCODER_TEST_SERVE_KEY": token})
    try:
        deadline = time.monotonic() + 30
        while not seen.exists():  # the probe is in flight: curl is waiting for the answer
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        args = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert any("curl" in line and "/v1/models" in line for line in args.splitlines())  # caught it running
        assert token not in args
        assert seen.read_text() == f"Bearer {token}"  # the header still reaches the server
        assert proc.stdout.readline().startswith("READY ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
