"""Secrets in `sft.env` reach swift's environment but never the dry-run output, logs or manifest."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from xcoder.config import compose
from xcoder.redaction import mask_env
from xcoder.registry import stage_cli

from .test_stage import FAKE_SWIFT, fake_swift, overrides  # noqa: F401  (fake_swift is a fixture)

main = stage_cli("sft")

SECRET = "sk-SECRET-sft-4711"


def test_mask_env_hides_secret_named_values_only():
    env = {"WANDB_API_KEY": "a", "HF_TOKEN": "b", "db_password": "c", "AWS_SECRET_ACCESS_KEY": "d",
           "GOOGLE_APPLICATION_CREDENTIALS": "e", "NPROC_PER_NODE": "8", "WANDB_PROJECT": "xcoder"}
    assert mask_env(env) == {"WANDB_API_KEY": "***", "HF_TOKEN": "***", "db_password": "***",
                             "AWS_SECRET_ACCESS_KEY": "***", "GOOGLE_APPLICATION_CREDENTIALS": "***",
                             "NPROC_PER_NODE": "8", "WANDB_PROJECT": "xcoder"}
    assert env["WANDB_API_KEY"] == "a"  # a copy: the launch env keeps the value


def test_sft_env_secret_is_masked_in_dry_run_log_and_manifest(tmp_path, fake_swift, tiny_model, capsys, caplog):  # noqa: F811 (the fixture imported above)
    exe, calls = fake_swift
    env_dump = tmp_path / "swift-env.json"
    probe = tmp_path / "probe-swift"  # the real swift process must still see the key
    probe.write_text(f"#!{sys.executable}\nimport json, os, subprocess, sys\n"
                     f"open({str(env_dump)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
                     f"sys.exit(subprocess.call([{str(exe)!r}, *sys.argv[1:]]))\n")
    probe.chmod(0o755)
    args = overrides(tmp_path, probe, tiny_model, f"+sft.env.WANDB_API_KEY={SECRET}", "+sft.env.WANDB_PROJECT=xc")

    assert main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "WANDB_API_KEY='***'" in dry and "WANDB_PROJECT=xc" in dry and SECRET not in dry

    caplog.set_level("INFO")
    assert main(args) == 0
    cfg = compose(args)
    out = Path(cfg.sft.output_dir)
    manifest = (out / "manifest.json").read_text()
    assert "WANDB_API_KEY='***'" in json.loads(manifest)["command"] and SECRET not in manifest
    env_shown = json.loads(manifest)["config"]["env"]
    assert env_shown["WANDB_API_KEY"] == "***" and env_shown["WANDB_PROJECT"] == "xc"
    assert all(SECRET not in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert SECRET not in caplog.text and SECRET not in capsys.readouterr().out
    assert json.loads(env_dump.read_text())["WANDB_API_KEY"] == SECRET
    assert os.environ.get("WANDB_API_KEY") != SECRET  # not leaked into this process either
