"""swift GRPO backend resumability with a stand-in `swift` executable (fast): a finished run with the
same key (command + data + start model identity) is not relaunched, a changed key trains fresh, and
every training run gets its own rewards.jsonl (two runs' rewards are never mixed)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from xcoder.config import compose
from xcoder.registry import stage_cli

from .helpers import write_sum_parquet

main = stage_cli("rl")

FAKE_SWIFT = textwrap.dedent("""\
    #!{python}
    # Stand-in for `swift rlhf`: records argv, logs one reward line, saves checkpoint-<max_steps>.
    import json, os, sys
    argv = sys.argv[1:]
    with open(os.environ["FAKE_SWIFT_LOG"], "a") as fh:
        fh.write(json.dumps(argv) + "\\n")
    with open(os.environ["XCODER_RL_REWARD_LOG"], "a") as fh:
        fh.write(json.dumps({{"call": 0, "score": -2.0, "model": argv[argv.index("--model") + 1]}}) + "\\n")
    out = argv[argv.index("--output_dir") + 1]
    step = argv[argv.index("--max_steps") + 1]
    ck = os.path.join(out, "checkpoint-" + step)
    os.makedirs(ck, exist_ok=True)
    open(os.path.join(ck, "config.json"), "w").write("{{}}")
    open(os.path.join(ck, "model.safetensors"), "wb").close()
    open(os.path.join(ck, "trainer_state.json"), "w").write(json.dumps({{"global_step": int(step)}}))
""")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    exe = tmp_path / "fake-swift"
    exe.write_text(FAKE_SWIFT.format(python=sys.executable))
    exe.chmod(0o755)
    calls = tmp_path / "swift-calls.jsonl"
    monkeypatch.setenv("FAKE_SWIFT_LOG", str(calls))
    model = tmp_path / "sft-final"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}')
    (model / "model.safetensors").write_bytes(b"weights-v1")
    data = write_sum_parquet(tmp_path / "rl.parquet", copies=2)
    args = ["experiment=demo", "rl.backend=swift", f"rl.swift_bin={exe}", f"rl.model_path={model}",
            f"rl.data.train_files=[{data}]",
            f"rl.output_dir={tmp_path}/rl"]
    return args, calls, model, data


def n_calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_finished_run_is_skipped_and_manifest_records_it(setup):
    args, calls, model, _ = setup
    assert main(args) == 0
    cfg = compose(args)
    out = Path(cfg.rl.output_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["steps"] == cfg.rl.swift.max_steps
    assert manifest["checkpoint"].endswith(f"checkpoint-{cfg.rl.swift.max_steps}")
    assert manifest["model"]["path"] == str(model.resolve()) and len(manifest["data"]["sha256"]) == 64
    assert (Path(cfg.rl.final_checkpoint) / "config.json").exists()
    assert main(args) == 0  # unchanged: no second `swift rlhf`, rewards untouched
    assert n_calls(calls) == 1
    assert len((out / "rewards.jsonl").read_text().splitlines()) == 1


def test_retrained_model_at_same_path_trains_fresh_with_its_own_rewards(setup):
    args, calls, model, _ = setup
    assert main(args) == 0
    out = Path(compose(args).rl.output_dir)
    old_key = json.loads((out / "manifest.json").read_text())["key"]
    (model / "model.safetensors").write_bytes(b"weights-v2")  # SFT retrained into the same `final`
    os.utime(model / "model.safetensors", ns=(2, 2))
    assert main(args) == 0
    assert n_calls(calls) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["key"] != old_key
    assert len((out / "rewards.jsonl").read_text().splitlines()) == 1  # this run's rewards only
    aside = out / f"checkpoints.superseded-{old_key[:12]}"
    steps = compose(args).rl.swift.max_steps
    assert (aside / "rewards.jsonl").exists() and (aside / f"checkpoint-{steps}").is_dir()  # the old run is kept aside


def test_changed_data_trains_fresh(setup, tmp_path):
    args, calls, _, data = setup
    assert main(args) == 0
    write_sum_parquet(data, copies=3)
    assert main(args) == 0
    assert n_calls(calls) == 2
    assert json.loads((Path(compose(args).rl.output_dir) / "manifest.json").read_text())["data"]["prompts"] == 3


def test_missing_synth_parquet_is_one_clear_line_and_exit_2(tmp_path, caplog):
    missing = tmp_path / "nope" / "rl.parquet"
    assert main(["experiment=demo", f"rl.data.train_files=[{missing}]", f"rl.output_dir={tmp_path}/rl"]) == 2
    assert str(missing) in caplog.text and "xcoder synth" in caplog.text


def test_verl_changed_key_moves_the_old_run_aside_instead_of_resuming(setup, tmp_path, monkeypatch):
    """verl's resume_mode=auto would continue any global_step_N in checkpoints_dir: a new key
    (here: a retrained start model) must start fresh; an unchanged rerun is skipped."""
    import subprocess

    args, _, model, _ = setup
    launched: list[list[str]] = []

    def fake_call(cmd, env=None):
        launched.append(cmd)
        ckdir = next(a.split("=", 1)[1] for a in cmd if a.startswith("trainer.default_local_dir="))
        os.makedirs(os.path.join(ckdir, "global_step_2"), exist_ok=True)
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    verl = [*args, "rl.backend=verl", "rl.merge.enabled=false"]
    assert main(verl) == 0
    assert main(verl) == 0
    assert len(launched) == 1  # unchanged: skipped
    (model / "model.safetensors").write_bytes(b"weights-v2")
    os.utime(model / "model.safetensors", ns=(3, 3))
    assert main(verl) == 0
    assert len(launched) == 2
    ckdir = Path(compose(verl).rl.checkpoints_dir)
    assert list(ckdir.parent.glob("checkpoints.superseded-*/global_step_2"))  # old run kept aside, not resumed
