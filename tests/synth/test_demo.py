"""`xcoder synth experiment=demo` runs offline from the shipped replay cache, writes schema-valid
SFT/RL parquet and a data card, and a run killed mid-way resumes without losing or redoing work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xcoder.config import REPO_ROOT
from xcoder.records import RLRow, SFTRow, read_records

pytestmark = pytest.mark.slow

XCODER = [sys.executable, "-m", "xcoder.cli", "synth", "experiment=demo"]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(XCODER + [f"run.output_dir={out}", *extra], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = _run(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_demo_writes_valid_sft_rl_parquet_and_data_card(demo_run):
    export = demo_run / "synth" / "export"
    sft = read_records(export / "sft.parquet", SFTRow)
    rl = read_records(export / "rl.parquet", RLRow)
    assert len(rl) == 6
    assert sorted(r.extra_info["style"] for r in rl) == ["atcoder"] * 2 + ["codeforces"] * 2 + ["leetcode"] * 2
    assert len(sft) == 18  # 3 correct of 4 candidates per task; the wrong one fails its final tests
    import datasets

    for name in ("sft", "rl"):
        ds = datasets.load_dataset("parquet", data_files=str(export / f"{name}.parquet"))["train"]
        assert len(ds) == {"sft": 18, "rl": 6}[name]
    card = json.loads((export / "data_card.json").read_text())
    assert card["stages"]["solutions"]["drop_reasons"]  # the demo's malformed teacher answers are counted
    assert card["stages"]["tests"]["drop_reasons"]["invalid_input"] >= 1
    assert (export / "DATA_CARD.md").read_text().startswith("# Data card")
    assert (export / "agreement_hist.png").exists()
    manifest = json.loads((demo_run / "synth" / "manifest.json").read_text())
    assert manifest["llm"]["mode"] == "replay"


def test_demo_killed_mid_run_resumes_without_loss_or_repeats(demo_run, tmp_path):
    out = tmp_path / "killed"
    journal = out / "synth" / "verify" / "journal.jsonl"
    one_by_one = "synth.verify.tasks_per_judge_batch=1"  # six journal flushes: a wide window to kill in
    proc = subprocess.Popen(XCODER + [f"run.output_dir={out}", one_by_one], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "demo finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "synth" / "export" / "rl.parquet").exists()
    done_before = journal.read_text().count("\n")
    rerun = _run(out, one_by_one)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    stages = json.loads((out / "synth" / "manifest.json").read_text())["stages"]
    for stage in ("tasks", "solutions", "tests"):
        assert stages[stage]["processed_units"] == 0, stage  # nothing redone
    assert stages["verify"]["resumed_units"] == done_before
    assert stages["verify"]["processed_units"] == 6 - done_before
    assert read_records(out / "synth/export/rl.parquet", RLRow) == read_records(demo_run / "synth/export/rl.parquet",
                                                                                RLRow)
    assert read_records(out / "synth/export/sft.parquet", SFTRow) == read_records(demo_run / "synth/export/sft.parquet",
                                                                                  SFTRow)


def test_unchanged_rerun_leaves_export_files_untouched(demo_run):
    """sft/rl key their work on these files: an unchanged rerun must not rewrite them (new mtime
    retrained SFT and RL; pipeline request 2)."""
    export = demo_run / "synth" / "export"
    names = ("sft.parquet", "rl.parquet", "data_card.json", "DATA_CARD.md", "manifest.json")
    before = {n: (export / n).stat().st_mtime_ns for n in names}
    rerun = _run(demo_run)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert {n: (export / n).stat().st_mtime_ns for n in names} == before


def test_export_writes_parquet_only_when_content_changes(demo_run, tmp_path):
    from xcoder.synth.export.stage import write_records_if_changed

    rows = read_records(demo_run / "synth" / "export" / "sft.parquet", SFTRow)
    path = tmp_path / "sft.parquet"
    assert write_records_if_changed(path, rows[:3], SFTRow) is True
    os.utime(path, ns=(7, 7))
    assert write_records_if_changed(path, rows[:3], SFTRow) is False
    assert path.stat().st_mtime_ns == 7
    assert write_records_if_changed(path, rows[:4], SFTRow) is True
    assert len(read_records(path, SFTRow)) == 4
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind
