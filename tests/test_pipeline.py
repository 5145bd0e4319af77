"""`xcoder pipeline`: the CPU demo end to end (one run per session, shared by the assertions), the
cluster chains it prints or submits, and how it stops on a failing or unknown stage."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xcoder import pipeline
from xcoder.config import REPO_ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

def run_pipeline_cli(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xcoder.cli", "pipeline", *args], cwd=cwd,
                          env={**os.environ, **OFFLINE}, text=True, **kw)


# ---- the demo, once ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`xcoder pipeline experiment=demo` in a fresh working directory (outputs/demo/ under it)."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = run_pipeline_cli(["experiment=demo"], cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=1200)
    (cwd / "pipeline.log").write_text(proc.stdout)
    return cwd, proc


@pytest.mark.slow
def test_demo_completes_with_progress_banners(demo):
    cwd, proc = demo
    assert proc.returncode == 0, proc.stdout[-4000:]
    for i, stage in enumerate(pipeline.KNOWN_STAGES, 1):
        assert f"[pipeline {i}/4] {stage} started" in proc.stdout
        assert f"[pipeline {i}/4] {stage} done in" in proc.stdout
    timings = json.loads((cwd / "outputs/demo/pipeline.json").read_text())
    assert [s["stage"] for s in timings["stages"]] == list(pipeline.KNOWN_STAGES)
    assert all(s["returncode"] == 0 and s["seconds"] > 0 for s in timings["stages"])


@pytest.mark.slow
def test_demo_report_summarises_every_stage(demo):
    cwd, proc = demo
    report = (cwd / "outputs/demo/report.md").read_text()
    for stage in pipeline.KNOWN_STAGES:
        assert f"\n## {stage}: " in report
    assert "not found" not in report and "FAILED" not in report and "could not summarize" not in report
    # numbers come from the stages' files: spot-check against them
    card = json.loads((cwd / "outputs/demo/synth/export/data_card.json").read_text())
    assert f"| SFT rows (parquet) | {card['outputs']['sft_rows']} |" in report
    assert "loss first → last" in report and "reward mean first → last" in report
    assert "| v5 |" in report and "avg@2" in report
    # artifact links resolve relative to the report
    assert "(synth/export/sft.parquet)" in report and (cwd / "outputs/demo/synth/export/sft.parquet").exists()


@pytest.mark.slow
def test_demo_parquet_validates(demo):
    from xcoder.records import RLRow, SFTRow, read_records

    cwd, _ = demo
    sft = read_records(cwd / "outputs/demo/synth/export/sft.parquet", SFTRow)
    rl = read_records(cwd / "outputs/demo/synth/export/rl.parquet", RLRow)
    assert sft and rl


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["sft/final", "rl/final_hf"])
def test_demo_checkpoints_load_with_transformers(demo, checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cwd, _ = demo
    path = cwd / "outputs/demo" / checkpoint
    assert (path / "config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    out = model.generate(**tok("def f(", return_tensors="pt"), max_new_tokens=2, do_sample=False)
    assert out.shape[1] >= 2


@pytest.mark.slow
def test_demo_eval_results_json(demo):
    cwd, _ = demo
    results = json.loads((cwd / "outputs/demo/eval/results.json").read_text())
    assert results["windows"] and all("avg@2" in w["score"] for w in results["windows"].values())
    assert results["model_path"].endswith("rl/final_hf")


@pytest.mark.slow
def test_demo_rerun_skips_finished_work(demo):
    """Rerunning the pipeline resumes: synthesis redoes no unit, SFT and RL keep their checkpoints (no
    new training), eval reuses its saved samples, and the report reads the same numbers."""
    cwd, _ = demo
    sft_final, rl_final = cwd / "outputs/demo/sft/final", cwd / "outputs/demo/rl/final_hf"
    before = (os.path.realpath(sft_final), os.path.realpath(rl_final))
    results_before = json.loads((cwd / "outputs/demo/eval/results.json").read_text())["windows"]
    proc = run_pipeline_cli(["experiment=demo"], cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for stage in ("tasks", "solutions", "tests", "verify"):
        assert re.search(rf"{stage}: 6 \w+, 6 already done, 0 to do", proc.stdout), stage
    assert "SFT already done" in proc.stdout and "RL already done" in proc.stdout
    assert "samples already saved" in proc.stdout
    assert (os.path.realpath(sft_final), os.path.realpath(rl_final)) == before
    assert json.loads((cwd / "outputs/demo/eval/results.json").read_text())["windows"] == results_before


# ---- failures ------------------------------------------------------------------------------------
def test_unknown_stage_is_rejected(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pipeline.main(["experiment=demo", "pipeline.stages=[synth,train]"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage(s) ['train']" in err and "synth" in err
    assert not (tmp_path / "outputs").exists()


def test_stages_out_of_order_are_rejected(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pipeline.main(["experiment=demo", "pipeline.stages=[sft,synth]"]) == 2
    assert "out of order" in capsys.readouterr().err


def test_failing_stage_stops_the_chain(tmp_path, capsys, monkeypatch):
    """A stage exiting non-zero: later stages never start, the exit code is the stage's, the message
    names the stage, and the timings/report record the failure."""
    monkeypatch.chdir(tmp_path)
    started = tmp_path / "started.txt"
    scripts = {"synth": "pass", "sft": "import sys; print('boom: bad sft input'); sys.exit(3)"}

    def fake_command(stage, overrides, dry_run=False):
        code = scripts.get(stage, f"open({str(started)!r}, 'a').write({stage!r})")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(pipeline, "stage_command", fake_command)
    rc = pipeline.main(["experiment=demo", "run.name=failing"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "stage 'sft' failed with exit code 3" in err and "not started: rl, eval" in err
    assert not started.exists()
    timings = json.loads((tmp_path / "outputs/failing/pipeline.json").read_text())
    assert [(s["stage"], s["returncode"]) for s in timings["stages"]] == [("synth", 0), ("sft", 3)]
    report = (tmp_path / "outputs/failing/report.md").read_text()
    assert "| sft | FAILED (exit 3) |" in report and "## eval" in report


def test_stage_missing_previous_output_fails_clearly(tmp_path):
    """Real stage process: RL without the synth parquet stops the pipeline with a non-zero exit."""
    proc = run_pipeline_cli(["experiment=demo", "run.name=norl", "pipeline.stages=[rl]"], tmp_path,
                            capture_output=True, timeout=300)
    assert proc.returncode != 0
    assert "stage 'rl' failed" in proc.stderr
    assert "rl.parquet" in proc.stdout + proc.stderr


# ---- cluster chains ------------------------------------------------------------------------------
# The paper experiments chain sft -> rl -> eval on the released data (their own pipeline.stages); the
# fully synthetic variant adds synth in front. Both must print/submit a correct chain.
FULL_SYNTHETIC = ["pipeline.stages=[synth,sft,rl,eval]", "sft.data.source=synth", "rl.data.source=synth"]
CHAINS = [("paper_qwen25_7b", [], ["sft", "rl", "eval"]), ("paper_qwen3_8b", [], ["sft", "rl", "eval"]),
          ("paper_qwen25_7b", FULL_SYNTHETIC, ["synth", "sft", "rl", "eval"]),
          ("paper_qwen3_8b", FULL_SYNTHETIC, ["synth", "sft", "rl", "eval"])]
CHAIN_IDS = ["qwen25-released", "qwen3-released", "qwen25-synthetic", "qwen3-synthetic"]


@pytest.mark.parametrize("experiment,extra,stages", CHAINS, ids=CHAIN_IDS)
def test_slurm_dry_run_prints_the_afterok_chain(experiment, extra, stages, capsys):
    assert pipeline.main([f"experiment={experiment}", "cluster=slurm", *extra, "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("=", 1)[0]: line for line in out.splitlines() if "sbatch --parsable" in line}
    assert list(lines) == stages
    first = lines[stages[0]]
    assert "--dependency" not in first
    for prev, stage in zip(stages, stages[1:]):
        assert f"--dependency=afterok:${{{prev}%%;*}}" in lines[stage]
    if "synth" in lines:
        assert "scripts/slurm/stage.sbatch synth" in lines["synth"]
    assert "scripts/slurm/stage.sbatch eval" in lines["eval"]
    assert "sft-recipe/slurm_sft.sbatch" in lines["sft"] and "rl-recipe/slurm_rl.sbatch" in lines["rl"]
    assert "--nodes=8 --gpus-per-node=8" in lines["sft"]  # paper SFT: 8 x 8 GPUs
    rl_nodes = 1 if experiment == "paper_qwen25_7b" else 2
    assert f"--nodes={rl_nodes} --gpus-per-node=8" in lines["rl"]
    assert all(f"experiment={experiment}" in line for line in lines.values())
    for stage in stages:
        assert re.search(rf"^#   xcoder {stage} .*--dry-run$", out, re.M), stage
    # the printed chain is a valid shell script
    subprocess.run(["bash", "-n"], input=out, text=True, check=True)


@pytest.mark.parametrize("experiment,extra,stages", CHAINS, ids=CHAIN_IDS)
def test_ray_dry_run_prints_head_node_commands(experiment, extra, stages, capsys):
    assert pipeline.main([f"experiment={experiment}", "cluster=ray", *extra, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "bash scripts/ray_start.sh head" in out and "--judge" in out
    commands = [line for line in out.splitlines() if line.startswith("xcoder ") and line.split()[1] != "pipeline"]
    assert [c.split()[1] for c in commands] == stages
    assert all(f"experiment={experiment} cluster=ray" in c for c in commands)
    assert "rl.reward.judge.mode=server" in commands[stages.index("rl")]
    if experiment == "paper_qwen3_8b":  # RL on 2 nodes: workers join the head
        assert "ray_start.sh worker --address HEAD_IP:6379" in out


def _fake_sbatch(bin_dir: Path, calls: Path, fail_on: int | None = None) -> None:
    """A stand-in `sbatch` on PATH: records its argv, prints `<jobid>;cluster` like --parsable."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "sbatch"
    script.write_text(f"""#!{sys.executable}
import json, sys
calls = {str(calls)!r}
try:
    n = sum(1 for _ in open(calls))
except FileNotFoundError:
    n = 0
if {fail_on!r} is not None and n + 1 == {fail_on!r}:
    print("sbatch: error: Batch job submission failed: Invalid account", file=sys.stderr)
    sys.exit(1)
with open(calls, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
print(f"{{1000 + n}};testcluster")
""")
    script.chmod(0o755)


def test_slurm_submits_the_chain_with_job_ids(tmp_path, capsys, monkeypatch):
    calls = tmp_path / "calls.jsonl"
    _fake_sbatch(tmp_path / "bin", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    rc = pipeline.main(["experiment=paper_qwen3_8b", "cluster=slurm", "cluster.partition=gpu", *FULL_SYNTHETIC])
    assert rc == 0, capsys.readouterr()
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(argvs) == 4
    assert all(a[0] == "--parsable" and "--partition=gpu" in a for a in argvs)
    assert not any(x.startswith("--dependency") for x in argvs[0])
    for prev_id, argv in zip([1000, 1001, 1002], argvs[1:]):
        assert f"--dependency=afterok:{prev_id}" in argv
    # sft's own script picks cluster=slurm itself: the pipeline forwards the other overrides
    script = str(REPO_ROOT / "sft-recipe/slurm_sft.sbatch")
    assert argvs[1][argvs[1].index(script) + 1:] == ["experiment=paper_qwen3_8b", "cluster.partition=gpu",
                                                     *FULL_SYNTHETIC]
    jobs = json.loads((tmp_path / "outputs/paper_qwen3_8b/slurm/jobs.json").read_text())
    assert [(j["stage"], j["job_id"]) for j in jobs] == [("synth", "1000"), ("sft", "1001"), ("rl", "1002"),
                                                          ("eval", "1003")]


def test_slurm_submission_failure_names_stage_and_submitted_jobs(tmp_path, capsys, monkeypatch):
    calls = tmp_path / "calls.jsonl"
    _fake_sbatch(tmp_path / "bin", calls, fail_on=2)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    assert pipeline.main(["experiment=paper_qwen25_7b", "cluster=slurm"]) == 2  # sft -> rl -> eval
    err = capsys.readouterr().err
    assert "sbatch for stage rl failed" in err and "Invalid account" in err and "already submitted: sft=1000" in err
    assert len(calls.read_text().splitlines()) == 1  # eval never submitted


def test_generic_stage_sbatch_runs_the_named_stage(tmp_path):
    """scripts/slurm/stage.sbatch outside Slurm: runs `xcoder <stage> <overrides>` from XCODER_ROOT."""
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts/slurm/stage.sbatch"), "synth", "experiment=demo",
                           "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **OFFLINE, "XCODER_ROOT": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "xcoder synth would run" in proc.stdout


@pytest.mark.parametrize("experiment", ["paper_qwen25_7b", "paper_qwen3_8b"])
def test_slurm_chain_stage_plans_run(experiment, capsys):
    """Every `xcoder <stage> ... --dry-run` line the Slurm chain prints is a command that works."""
    assert pipeline.main([f"experiment={experiment}", "cluster=slurm", *FULL_SYNTHETIC, "--dry-run"]) == 0
    plans = [shlex.split(line[len("#   xcoder "):]) for line in capsys.readouterr().out.splitlines()
             if line.startswith("#   xcoder ")]
    assert [p[0] for p in plans] == list(pipeline.KNOWN_STAGES)
    for plan in plans:
        proc = subprocess.run([sys.executable, "-m", "xcoder.cli", *plan], capture_output=True, text=True,
                              timeout=300, env={**os.environ, **OFFLINE})
        assert proc.returncode == 0, (plan, proc.stderr[-2000:])


# ---- report --------------------------------------------------------------------------------------
def test_report_names_missing_artifacts_without_failing(tmp_path):
    """Before any stage ran (or after a failure) the report still covers every stage and names the
    files it could not find."""
    from xcoder.config import compose
    from xcoder.report import write_report

    cfg = compose(["experiment=demo", f"run.output_dir={tmp_path}/out"])
    report = write_report(cfg).read_text()
    for stage in pipeline.KNOWN_STAGES:
        assert f"## {stage}: " in report
    assert f"synth manifest not found**: `{tmp_path}/out/synth/manifest.json`" in report
    assert f"eval results JSON not found**: `{tmp_path}/out/eval/results.json`" in report


def test_report_reads_only_the_last_run_of_an_appended_log():
    """ms-swift appends to logging.jsonl and the reward log grows across runs: the report summarises
    the last run (a step counter going back starts a new run; equal steps stay in the same run)."""
    from xcoder.report import last_run, swift_step

    rows = [{"loss": 1.0, "global_step/max_steps": "1/2"}, {"loss": 0.5, "global_step/max_steps": "2/2"},
            {"train_runtime": 1.0, "global_step/max_steps": "2/2"},
            {"loss": 0.9, "global_step/max_steps": "1/2"}, {"loss": 0.4, "global_step/max_steps": "2/2"}]
    assert [r.get("loss") for r in last_run(rows, swift_step)] == [0.9, 0.4]
    assert last_run(rows[:3], swift_step) == rows[:3]
