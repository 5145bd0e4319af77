"""The synth section of the pipeline report, read back from the files the stage wrote: the run
manifest (per-stage counts, drops by reason), the export's data card and the parquet row counts."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from xcoder.report import link, load_json, missing, parquet_rows, table


def summarize(cfg: DictConfig, report_dir: Path) -> list[str]:
    out_dir = Path(str(cfg.synth.output_dir))
    manifest_path = out_dir / "manifest.json"
    sft_parquet, rl_parquet = Path(str(cfg.synth.sft_parquet)), Path(str(cfg.synth.rl_parquet))
    card_path = sft_parquet.parent / "data_card.json"
    lines: list[str] = []
    manifest = load_json(manifest_path)
    if manifest is None:
        return missing(manifest_path, "synth manifest")
    rows = []
    for name, st in manifest.get("stages", {}).items():
        if "kept" in st or "dropped" in st:
            kept, dropped = st.get("kept"), st.get("dropped")
        else:  # export counts rows, not units
            kept, dropped = f"SFT {st.get('sft_rows')}, RL {st.get('rl_rows')}", None
        work = (f"{st.get('processed_units')} new, {st.get('resumed_units')} resumed"
                if "processed_units" in st else ("skipped (up to date)" if st.get("skipped") else ""))
        drops = dict(st.get("drop_reasons") or {})
        drops.update({k: v for k, v in (st.get("test_drop_reasons") or {}).items() if v})
        rows.append([name, kept, dropped, drops or "none", work, st.get("seconds")])
    lines += ["Counts per stage (from the synth manifest; drops by reason):", ""]
    lines += table(["stage", "kept", "dropped", "drops by reason", "units this run", "seconds"], rows) + [""]
    card = load_json(card_path)
    n_sft, n_rl = parquet_rows(sft_parquet), parquet_rows(rl_parquet)
    facts = [("SFT rows (parquet)", n_sft), ("RL rows (parquet)", n_rl)]
    if card is not None:
        export = manifest.get("stages", {}).get("export", {})
        exp_manifest = load_json(sft_parquet.parent / "manifest.json") or {}
        facts.insert(0, ("kept tasks", exp_manifest.get("kept_tasks", export.get("kept_tasks"))))
        styles = card.get("styles", {})
        facts += [("tasks by style", styles.get("kept_tasks")), ("SFT rows by style", styles.get("sft_rows")),
                  ("final tests", card.get("tests", {}).get("final_tests")),
                  ("tests by source", card.get("tests", {}).get("by_source")),
                  ("export drops", (exp_manifest.get("sft") or {}).get("drop_reasons")),
                  ("LLM", f"{(manifest.get('llm') or {}).get('model')} ({(manifest.get('llm') or {}).get('mode')})")]
    else:
        lines += missing(card_path, "data card JSON")
    lines += table(["", "value"], facts) + [""]
    lines += ["Artifacts: " + ", ".join([link(sft_parquet, report_dir), link(rl_parquet, report_dir),
                                         link(sft_parquet.parent / "DATA_CARD.md", report_dir),
                                         link(card_path, report_dir), link(manifest_path, report_dir)])]
    return lines
