"""Stage orchestration with a stand-in `swift` executable (fast): checkpoint hand-off, resume,
no-op rerun, failure propagation, and rank>0 nodes waiting for rank 0's data."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from xcoder import runs
from xcoder.config import compose
from xcoder.registry import stage_cli
from xcoder.sft.data import SFTDataError
from xcoder.sft.stage import run

from .samples import write_sft_parquet

main = stage_cli("sft")

FAKE_SWIFT = textwrap.dedent("""\
    #!{python}
    # Stand-in for `swift`: records its argv, then saves checkpoint-<steps> like `swift sft` would.
    import json, os, sys
    argv = sys.argv[1:]
    with open(os.environ["FAKE_SWIFT_LOG"], "a") as fh:
        fh.write(json.dumps(argv) + "\\n")
    if os.environ.get("FAKE_SWIFT_RC", "0") != "0":
        print("boom"); sys.exit(int(os.environ["FAKE_SWIFT_RC"]))
    out = argv[argv.index("--output_dir") + 1]
    if os.environ.get("FAKE_SWIFT_PARTIAL"):
        ck = os.path.join(out, "checkpoint-" + os.environ["FAKE_SWIFT_PARTIAL"])
        os.makedirs(ck, exist_ok=True)
        open(os.path.join(ck, "config.json"), "w").write("{{}}")
        open(os.path.join(ck, "model.safetensors"), "wb").close()
        sys.exit(3)
    step = argv[argv.index("--max_steps") + 1]
    ck = os.path.join(out, "checkpoint-" + step)
    os.makedirs(ck, exist_ok=True)
    open(os.path.join(ck, "config.json"), "w").write("{{}}")
    open(os.path.join(ck, "model.safetensors"), "wb").close()
    print("saved", ck)
""")


@pytest.fixture
def fake_swift(tmp_path, monkeypatch):
    exe = tmp_path / "fake-swift"
    exe.write_text(FAKE_SWIFT.format(python=sys.executable))
    exe.chmod(0o755)
    calls = tmp_path / "swift-calls.jsonl"
    monkeypatch.setenv("FAKE_SWIFT_LOG", str(calls))
    for var in ("NODE_RANK", "NNODES", "NPROC_PER_NODE"):
        monkeypatch.delenv(var, raising=False)
    return exe, calls


def overrides(tmp_path, exe, tiny_model, *more):
    parquet = tmp_path / "sft.parquet"
    if not parquet.exists():
        write_sft_parquet(parquet, n=4)
    return ["experiment=demo", f"run.output_dir={tmp_path}/run", f"sft.swift_bin={exe}",
            f"sft.tiny_model_dir={tiny_model}", f"sft.data.train_parquet={parquet}", "sft.swift.max_steps=4", *more]


def calls_of(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_final_checkpoint_is_linked_and_rl_reads_it(tmp_path, fake_swift, tiny_model):
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 0
    cfg = compose(args)
    final = Path(cfg.sft.final_checkpoint)
    assert final.is_symlink() and os.readlink(final) == "checkpoints/checkpoint-4"
    assert runs.is_hf_checkpoint(final)
    assert cfg.rl.model_path == str(final)  # hand-off by interpolation, no path copied
    manifest = json.loads((final.parent / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["checkpoint"].endswith("checkpoint-4")
    assert manifest["data"]["rows_written"] == 4
    assert "swift.log" in os.listdir(final.parent) and "saved" in (final.parent / "swift.log").read_text()

    assert main(args) == 0  # same config and data: nothing to do
    assert len(calls_of(calls)) == 1

    assert main(args + ["sft.swift.max_steps=6"]) == 0  # new key: a fresh run, never an extension of the old one
    last = calls_of(calls)[-1]
    assert "--resume_from_checkpoint" not in last and "--resume_only_model" not in last
    assert os.readlink(final) == "checkpoints/checkpoint-6"
    ckdir = Path(cfg.sft.checkpoints_dir)
    assert [p.name for p in runs.checkpoints(ckdir)] == ["checkpoint-6"]  # the old run's checkpoint-4 is not in it
    old_key = manifest["key"]
    assert (ckdir.parent / f"checkpoints.superseded-{old_key[:12]}" / "checkpoint-4").is_dir()  # kept aside
    assert json.loads((final.parent / "manifest.json").read_text())["key"] != old_key


def test_changed_data_never_resumes_the_finished_run(tmp_path, fake_swift, tiny_model):
    """A finished run (checkpoint-4 of max_steps 4) must not be resumed when the data changes:
    that trained a silent step "5/4" and moved `final` (pipeline request 4)."""
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 0
    write_sft_parquet(tmp_path / "sft.parquet", n=3)  # new content at the same path
    assert main(args) == 0
    assert len(calls_of(calls)) == 2
    last = calls_of(calls)[-1]
    assert "--resume_from_checkpoint" not in last
    final = Path(compose(args).sft.final_checkpoint)
    assert os.readlink(final) == "checkpoints/checkpoint-4"
    assert json.loads((final.parent / "manifest.json").read_text())["data"]["rows_written"] == 3


def test_rewritten_identical_data_does_not_retrain(tmp_path, fake_swift, tiny_model):
    """synth export may rewrite sft.parquet with the same bytes (new mtime): the key is the content."""
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 0
    parquet = tmp_path / "sft.parquet"
    data = parquet.read_bytes()
    parquet.unlink()
    parquet.write_bytes(data)
    os.utime(parquet, ns=(1, 1))
    assert main(args) == 0
    assert len(calls_of(calls)) == 1


def test_unfinished_run_of_same_key_resumes(tmp_path, fake_swift, tiny_model, monkeypatch):
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    monkeypatch.setenv("FAKE_SWIFT_PARTIAL", "2")  # saves checkpoint-2, then dies
    assert main(args) == 3
    monkeypatch.delenv("FAKE_SWIFT_PARTIAL")
    assert main(args) == 0
    last = calls_of(calls)[-1]
    assert last[last.index("--resume_from_checkpoint") + 1].endswith("checkpoints/checkpoint-2")
    assert os.readlink(Path(compose(args).sft.final_checkpoint)) == "checkpoints/checkpoint-4"


def test_finished_run_without_manifest_is_published_not_retrained(tmp_path, fake_swift, tiny_model):
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 0
    cfg = compose(args)
    (Path(cfg.sft.output_dir) / "manifest.json").unlink()
    Path(cfg.sft.final_checkpoint).unlink()
    assert main(args) == 0
    assert len(calls_of(calls)) == 1  # no second swift launch (a resume would train past max_steps)
    assert os.readlink(Path(cfg.sft.final_checkpoint)) == "checkpoints/checkpoint-4"


def test_resume_never_starts_fresh(tmp_path, fake_swift, tiny_model):
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 0
    assert main(args + ["sft.swift.max_steps=8", "sft.resume=never"]) == 0
    assert "--resume_from_checkpoint" not in calls_of(calls)[-1]


def test_swift_failure_is_returned_and_nothing_is_published(tmp_path, fake_swift, tiny_model, monkeypatch):
    exe, _ = fake_swift
    monkeypatch.setenv("FAKE_SWIFT_RC", "3")
    args = overrides(tmp_path, exe, tiny_model)
    assert main(args) == 3
    cfg = compose(args)
    assert not Path(cfg.sft.final_checkpoint).exists()
    assert not (Path(cfg.sft.output_dir) / "manifest.json").exists()


def test_nonzero_rank_waits_for_rank0_data_and_does_not_publish(tmp_path, fake_swift, tiny_model, monkeypatch):
    exe, calls = fake_swift
    args = overrides(tmp_path, exe, tiny_model, "sft.data.wait_timeout_s=0")
    cfg = compose(args)
    with pytest.raises(SFTDataError, match="waiting for rank 0"):
        from xcoder.sft import data as sft_data

        sft_data.wait_for(cfg.sft.data, str(tiny_model), timeout_s=0, poll_s=0)
    assert main(args) == 0  # rank 0 converts, trains, publishes
    Path(cfg.sft.final_checkpoint).unlink()
    manifest = Path(cfg.sft.output_dir) / "manifest.json"
    key = json.loads(manifest.read_text())["key"]
    manifest.unlink()
    runs.write_run(cfg.sft.checkpoints_dir, key, "running")  # as rank 0 leaves it while its run is training
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert run(compose(args), dry_run=False) == 0  # finds rank 0's data, trains, leaves publishing to rank 0
    assert len(calls_of(calls)) == 2 and not Path(cfg.sft.final_checkpoint).exists()


def test_checkpoint_ordering_is_numeric_and_skips_unloadable(tmp_path):
    root = tmp_path / "checkpoints"
    for step, loadable in ((9, True), (10, True), (12, False)):
        d = root / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if loadable:
            (d / "config.json").write_text("{}")
            (d / "model.safetensors").write_bytes(b"")
    (root / "checkpoint-x").mkdir()
    assert [p.name for p in runs.checkpoints(root)] == ["checkpoint-9", "checkpoint-10", "checkpoint-12"]
    assert runs.last_checkpoint(root).name == "checkpoint-10"
    assert runs.last_checkpoint(tmp_path / "none") is None
    with pytest.raises(runs.CheckpointError, match="no HF-loadable checkpoint"):
        runs.publish_final(tmp_path / "none", tmp_path / "final")


def test_final_link_is_replaced_atomically_but_never_clobbers_a_directory(tmp_path):
    a, b = tmp_path / "ck" / "checkpoint-1", tmp_path / "ck" / "checkpoint-2"
    a.mkdir(parents=True)
    b.mkdir()
    final = tmp_path / "final"
    runs.link_final(final, a)
    runs.link_final(final, b)
    assert os.readlink(final) == "ck/checkpoint-2" and final.resolve() == b.resolve()
    real_dir = tmp_path / "final_dir"
    real_dir.mkdir()
    with pytest.raises(runs.CheckpointError, match="not a symlink"):
        runs.link_final(real_dir, a)


def test_demo_max_length_fits_demo_rows_and_tiny_model():
    """Demo SFT rows are 766-1501 tokens (tiny tokenizer + chat template): 512 dropped all of them."""
    cfg = compose(["experiment=demo"])
    assert cfg.sft.swift.max_length == 2048 and cfg.sft.data.max_tokens == 2048
    from xcoder.tiny_model import build_tiny_model  # noqa: F401  (max_position_embeddings 2048 is its limit)
