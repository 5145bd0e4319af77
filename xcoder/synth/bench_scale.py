"""Synthesis at scale: the whole chain (tasks -> solutions -> tests -> verify -> export) at two sizes
against the project's fake OpenAI-compatible server, answering every SynthSmith prompt with
realistic content (statements with samples, solutions with tens of KB of reasoning and valid
programs — one in eight wrong —, prompted inputs, generator and validator programs).

Prints per size: tasks/s per stage, peak RSS of the driver (`xcoder synth`) and of the judge
processes (sampled from /proc every 0.2 s), output bytes; then the peak-RSS ratio between the
sizes. With `--kill` it reruns verify + export of the larger size (the earlier stages resume from
their journals), SIGKILLs it when verify is half done, reruns the same command and compares: units
lost, LLM requests made (server-side count per prompt + seed; a resumed run should ask nothing), and
whether every output parquet equals the uninterrupted run's.

    python -m xcoder.synth.bench_scale [--sizes 300,3000] [--kill] [--workdir outputs/bench_scale]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xcoder.records import FeatureSubtree, write_records

# ---------------------------------------------------------------- the fake teacher's answers

_WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "zu", "ha", "do")
          for b in ("ren", "mak", "tis", "lon", "dar", "vel", "pum", "sor", "gai", "bex", "nol", "quo")]
# {v}: a name drawn per task and candidate, so exported solutions are distinct programs (SFT dedup is exact)
SUM = "n = int(input())\n{v} = sum(map(int, input().split()))\nprint({v})"
SUM2 = "import sys\n{v} = sys.stdin.read().split()\nprint(sum(int(x) for x in {v}[1:]))"
WRONG = "n = int(input())\n{v} = max(map(int, input().split()))\nprint({v})"
GENERATOR = ("import random\ns, sc = input().split()\nrandom.seed(int(s))\n"
             "n = {'small': 5, 'edge': 1, 'stress': 2000}[sc]\n"
             "print(n)\nprint(*[random.randint(0, 1000) for _ in range(n)])")
VALIDATOR = ("import sys\nl = sys.stdin.read().split('\\n')\nn = int(l[0])\nassert 1 <= n <= 200000\n"
             "a = l[1].split()\nassert len(a) == n and all(0 <= int(x) <= 1000 for x in a)")
REASONING_BYTES = 20_000


def _rng(prompt: str, extra: Any = "") -> random.Random:
    return random.Random(hashlib.sha1(f"{prompt}\x00{extra}".encode()).hexdigest())


def _text(rng: random.Random, n_bytes: int) -> str:
    out: list[str] = []
    size = 0
    while size < n_bytes:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(12)) + "."
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


def _statement(rng: random.Random) -> str:
    story = _text(rng, 900)
    a = [rng.randint(0, 1000) for _ in range(3)]
    return (f"# The {rng.choice(_WORDS).title()} Festival\n\n{story}\n\nPrint the total of the lanterns' values.\n\n"
            "## Input\nThe first line contains n (1 <= n <= 200000). The second line contains n integers a_i "
            "(0 <= a_i <= 1000).\n\n## Output\nPrint the sum.\n\n## Example\n### Input\n```\n3\n"
            f"{a[0]} {a[1]} {a[2]}\n```\n### Output\n```\n{sum(a)}\n```\n### Input\n```\n1\n{a[0]}\n```\n"
            f"### Output\n```\n{a[0]}\n```\n")


def respond(prompt: str, body: dict[str, Any], i: int) -> str:
    """The fake server's answer to one SynthSmith prompt (`--responder` of `xcoder.llm.fake_server`)."""
    head = prompt.lstrip().split("\n", 1)[0]
    seed = body.get("seed")
    rng = _rng(prompt, (seed, i))
    if head.startswith("Below is a tree of programming features"):
        roles = {"algorithms": {"prefix sums": {"feature": "prefix sums", "potential_use": "running totals"}}}
        return "```json\n" + json.dumps({"feature_roles_tree": roles, "selected_features_tree": roles,
                                         "integration_strategy": _text(rng, 300)}) + "\n```"
    if head.startswith("Write a Codeforces-style problem"):
        return "```json\n" + json.dumps({"question": _statement(rng)}) + "\n```"
    if head.startswith("Solve the following problem"):
        code = (WRONG if int(seed or 0) % 8 == 7 else (SUM if int(seed or 0) % 2 else SUM2)).format(
            v=f"{rng.choice(_WORDS)}_{rng.randrange(10**6)}")
        return f"<think>\n{_text(rng, REASONING_BYTES)}\n</think>\n\nSum the values.\n\n```python\n{code}\n```"
    if head.startswith("Write test inputs"):
        items = []
        for k in range(4):
            n = rng.randint(1, 6)
            items.append({"input": f"{n}\n{' '.join(str(rng.randint(0, 1000)) for _ in range(n))}\n",
                          "tag": "edge" if k == 0 else "plain"})
        return "```json\n" + json.dumps({"inputs": items}) + "\n```"
    if head.startswith("Write a Python 3 program that generates"):
        return f"```python\n{GENERATOR}\n```"
    if head.startswith("Write a Python 3 input validator"):
        return f"```python\n{VALIDATOR}\n```"
    return "I cannot help with that."


# ---------------------------------------------------------------- running and measuring

def write_subtrees(path: Path, n: int) -> Path:
    rows = [FeatureSubtree(idx=i, features=json.dumps({"algorithms": {"sums": [f"prefix sums {i}", "loops"]}}),
                           leaf_count=2) for i in range(n)]
    return write_records(path, rows, FeatureSubtree)


class FakeServer:
    """The project's fake OpenAI server in its own process (its memory is not the driver's)."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xcoder.llm.fake_server", "bench", "--port", str(port), "--hash-prompts",
             "--responder", "xcoder.synth.bench_scale:respond"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        m = re.match(r"URL (\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.url = m.group(1)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url.rsplit("/v1", 1)[0] + "/_stats", timeout=30) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, stack = [], [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    """Peak RSS of a process (the driver) and of all its descendants together (the judge)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.driver_peak = self.judge_peak = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.driver_peak = max(self.driver_peak, _rss_mb(self.pid))
            self.judge_peak = max(self.judge_peak, sum(_rss_mb(p) for p in _descendants(self.pid)))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def synth_command(workdir: Path, subtrees: Path, url: str, overrides: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "xcoder.cli", "synth", f"run.output_dir={workdir}", "run.name=bench_scale",
            f"synth.features.subtrees_parquet={subtrees}", "synth.stages=[tasks,solutions,tests,verify,export]",
            f"llm.endpoints=[{url}]", "llm.model=bench", "llm.api_key_env=XCODER_BENCH_KEY", "llm.concurrency=64",
            "synth.tasks.style_cycle=[codeforces]", "synth.solutions.teachers=[{name: t, model: null, n: 8}]",
            "synth.tests.generator.seeds={small: 1, edge: 1, stress: 1}", "synth.tests.max_tests=8",
            "synth.verify.golden.min_tests=4", "judge.workers=2", "synth.export.plots=false", *overrides]


def run_chain(workdir: Path, subtrees: Path, url: str, *, kill_at_verify: float | None = None,
              tasks: int = 0, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """One `xcoder synth` run as a subprocess; returns wall time, peak RSS and whether it was killed."""
    env = {**os.environ, "XCODER_BENCH_KEY": "not-a-secret", "TQDM_DISABLE": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen(synth_command(workdir, subtrees, url, overrides), env=env, stdout=subprocess.DEVNULL,
                            stderr=open(workdir.parent / f"{workdir.name}.log", "ab"), start_new_session=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    killed = False
    journal = workdir / "synth" / "verify" / "journal.jsonl"
    while proc.poll() is None:
        if kill_at_verify is not None and journal.exists():
            with open(journal, "rb") as fh:
                done = sum(1 for _ in fh)
            if done >= kill_at_verify * tasks:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                proc.wait()
                break
        time.sleep(0.1)
    sampler.stop()
    return {"wall_s": time.monotonic() - t0, "returncode": proc.returncode, "killed": killed,
            "driver_peak_mb": sampler.driver_peak, "judge_peak_mb": sampler.judge_peak}


_TIMING = re.compile(r'(\\?"(?:latency_s|created)\\?": )[0-9.e+-]+')


def outputs_of(workdir: Path) -> dict[str, str]:
    """A digest of every stage's parquet rows (what 'identical output' compares). The LLM provenance's
    timing fields (`latency_s`, `created`) are blanked: they differ between any two live runs."""
    import pyarrow.parquet as pq

    out = {}
    for p in sorted((workdir / "synth").rglob("*.parquet")):
        digest = hashlib.sha256()
        for batch in pq.ParquetFile(p).iter_batches(batch_size=512):
            for row in batch.to_pylist():
                digest.update(_TIMING.sub(r"\g<1>0", json.dumps(row, sort_keys=True, default=str)).encode())
        out[str(p.relative_to(workdir))] = digest.hexdigest()
    return out


def stage_rates(workdir: Path, tasks: int) -> dict[str, float]:
    manifest = json.loads((workdir / "synth" / "manifest.json").read_text())
    return {name: round(tasks / m["seconds"], 1) if m.get("seconds") else 0.0 for name, m in manifest["stages"].items()}


def output_bytes(workdir: Path) -> int:
    return sum(p.stat().st_size for p in (workdir / "synth").rglob("*.parquet"))


def free_port() -> int:
    """One port for every server of a benchmark run: tasks record their endpoint in their provenance,
    so runs compared byte for byte must have talked to the same URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(size: int, root: Path, port: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    workdir = root / f"n{size}"
    shutil.rmtree(workdir, ignore_errors=True)
    subtrees = write_subtrees(root / f"subtrees_{size}.parquet", size)
    server = FakeServer(port)
    try:
        run = run_chain(workdir, subtrees, server.url, overrides=overrides)
        stats = server.stats()
    finally:
        server.close()
    if run["returncode"] != 0:
        raise RuntimeError(f"synth at {size} tasks failed (exit {run['returncode']}); log: {workdir}.log")
    manifest = json.loads((workdir / "synth" / "manifest.json").read_text())["stages"]
    return {"size": size, **run, "requests": stats["requests"], "repeated": stats["repeated"],
            "rates": stage_rates(workdir, size), "bytes": output_bytes(workdir),
            "kept": manifest["verify"]["kept"], "sft_rows": manifest["export"]["sft_rows"],
            "outputs": outputs_of(workdir)}


def kill_and_resume(size: int, root: Path, reference: dict[str, str], port: int,
                    overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Rerun verify + export of the uninterrupted run (a copy of its directory without them: the
    earlier stages resume from their journals), SIGKILL it when verify is half done, rerun the same
    command, and compare every output with the uninterrupted run's. Why a copy: a fresh live run is
    not byte-comparable — under load a generator or validator can time out in one run and not in the
    other, which changes the test set; resume must not change anything, and that is what is checked."""
    workdir = root / f"n{size}_killed"
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(root / f"n{size}", workdir, ignore=shutil.ignore_patterns("verify", "export"))
    subtrees = root / f"subtrees_{size}.parquet"
    server = FakeServer(port)
    try:
        first = run_chain(workdir, subtrees, server.url, kill_at_verify=0.5, tasks=size, overrides=overrides)
        journal = workdir / "synth" / "verify" / "journal.jsonl"
        done_at_kill = sum(1 for _ in open(journal, "rb")) if journal.exists() else 0
        second = run_chain(workdir, subtrees, server.url, overrides=overrides)
        stats = server.stats()
    finally:
        server.close()
    manifest = json.loads((workdir / "synth" / "manifest.json").read_text())["stages"]
    got = outputs_of(workdir)
    return {"killed": first["killed"], "verify_done_at_kill": done_at_kill, "resume_returncode": second["returncode"],
            "resumed_units": manifest["verify"]["resumed_units"],
            "processed_units": manifest["verify"]["processed_units"],
            "tasks": manifest["verify"]["tasks"], "requests": stats["requests"], "repeated": stats["repeated"],
            "identical": got == reference, "differing": sorted(k for k in reference if got.get(k) != reference[k])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="300,3000", help="two task counts (the second 10x the first is the point)")
    ap.add_argument("--kill", action="store_true", help="also kill -9 the larger run mid-verify and resume it")
    ap.add_argument("--workdir", default="outputs/bench_scale")
    args = ap.parse_args(argv)
    root = Path(args.workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    small, large = (int(x) for x in args.sizes.split(","))
    port = free_port()
    results = [measure(small, root, port), measure(large, root, port)]
    print("| tasks | wall s | tasks/s: tasks / solutions / tests / verify / export | driver peak RSS | judge peak RSS "
          "| output bytes | LLM requests (repeated) | kept | SFT rows |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rates = " / ".join(str(r["rates"].get(s, "-")) for s in ("tasks", "solutions", "tests", "verify", "export"))
        print(f"| {r['size']} | {r['wall_s']:.0f} | {rates} | {r['driver_peak_mb']:.0f} MB | {r['judge_peak_mb']:.0f} "
              f"MB "
              f"| {r['bytes'] / 1e6:.1f} MB | {r['requests']} ({r['repeated']}) | {r['kept']} | {r['sft_rows']} |")
    ratio = results[1]["driver_peak_mb"] / max(1e-9, results[0]["driver_peak_mb"])
    print(f"\ndriver peak-RSS ratio {large} vs {small} tasks ({large / small:.0f}x the tasks): {ratio:.2f}x "
          f"(target <= 1.5x); judge {results[1]['judge_peak_mb'] / max(1e-9, results[0]['judge_peak_mb']):.2f}x")
    if args.kill:
        k = kill_and_resume(large, root, results[1]["outputs"], port)
        print(f"\nkill -9 at verify {k['verify_done_at_kill']}/{k['tasks']} tasks (a copy of the {large}-task run, "
              f"verify + export redone), rerun of the same command: "
              f"exit {k['resume_returncode']}, verify resumed {k['resumed_units']} + processed {k['processed_units']} "
              f"= {k['resumed_units'] + k['processed_units']} of {k['tasks']} (lost: "
              f"{k['tasks'] - k['resumed_units'] - k['processed_units']}), LLM requests {k['requests']} "
              f"(repeated: {k['repeated']}), outputs identical to the uninterrupted run: {k['identical']}"
              + (f" (differ: {k['differing']})" if k["differing"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
