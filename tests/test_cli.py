"""The `xcoder` console script lists stages, prints resolved configs and rejects bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xcoder.cli import STAGES, main


def test_top_level_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert stage in out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_help(stage, capsys):
    with pytest.raises(SystemExit) as exc:
        main([stage, "--help"])
    assert exc.value.code == 0
    assert f"xcoder {stage}" in capsys.readouterr().out


def test_cfg_job_prints_resolved_config(capsys):
    assert main(["synth", "run.name=x", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "synth:" in out and "outputs/x/synth" in out and "${" not in out


def test_unknown_key_exits_2_with_message(capsys):
    assert main(["synth", "synth.typo_knob=3"]) == 2
    assert "typo_knob" in capsys.readouterr().err


def test_unknown_stage_exits_2(capsys):
    assert main(["nope"]) == 2


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "xcoder.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "pipeline" in proc.stdout


def test_user_error_prints_one_line_without_traceback(tmp_path, capsys, monkeypatch):
    """A missing input parquet is the user's to fix: one line naming the file, exit 2, no traceback."""
    monkeypatch.delenv("XCODER_DEBUG", raising=False)
    out = tmp_path / "run"
    assert main(["synth", f"run.output_dir={out}", "synth.stages=[verify]"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "xcoder synth: error:" in line]
    assert len(lines) == 1 and "tasks.parquet: no such file" in lines[0]
    assert "Traceback" not in err


def test_debug_flag_or_env_keeps_the_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("XCODER_DEBUG", raising=False)
    argv = ["synth", f"run.output_dir={tmp_path / 'run'}", "synth.stages=[verify]"]
    with pytest.raises(FileNotFoundError):
        main([*argv, "--debug"])
    monkeypatch.setenv("XCODER_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(argv)


def test_config_error_is_one_line(capsys):
    assert main(["eval", "--cfg", "job", "eval.nope={a: 1}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eval.nope" in err


def test_readme_window_override_works_under_struct_mode(capsys):
    """README/eval docs: `eval.windows={name: {start, end}}` sets the windows (a new name included)."""
    override = 'eval.windows={early: {start: "2024-08-01", end: "2024-09-01"}}'
    assert main(["eval", "--cfg", "job", override]) == 0
    out = capsys.readouterr().out
    assert "early:" in out and "2024-09-01" in out and "v6:" not in out
