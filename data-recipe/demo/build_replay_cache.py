"""Build the demo's LLM replay cache from hand-written responses (written for the xcoder project).

The demo's subtrees come from the feature sampler run on the shipped seed tree, and the cache key
of every request depends on the exact prompt, so the cache cannot be written by hand in isolation:
this script runs the REAL synthesis stages (features.sample -> tasks -> solutions -> tests) with
a scripted client that answers each request from `responses.py` (keyed by style and the task's
order within its style), records each exchange with `xcoder.llm.record`, and serves it back
through a real replay-mode `LLMClient`. It then runs the whole demo once more from scratch in
replay mode to prove the cache is complete.

    .venv/bin/python data-recipe/demo/build_replay_cache.py [--keep-existing]

Rerun it whenever a prompt template, the demo config or the feature sampler changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import responses as R  # noqa: E402

from xcoder.config import compose  # noqa: E402
from xcoder.records import FeatureSubtree, read_records  # noqa: E402
from xcoder.synth import llm_io  # noqa: E402
from xcoder.synth.stage import run_stages  # noqa: E402

log = logging.getLogger("build_replay_cache")


def _roles(tree: Any) -> Any:
    if isinstance(tree, list):
        return {leaf: {"feature": leaf, "potential_use": f"{leaf} may drive part of the computation"} for leaf in tree}
    return {k: _roles(v) for k, v in tree.items()}


def _select(tree: Any, budget: list[int]) -> Any:
    """The first `budget` leaves of the roles tree, keeping only internal nodes with selected children."""
    if isinstance(tree, dict) and isinstance(tree.get("feature"), str):
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        return tree
    out = {}
    for k, v in tree.items():
        sub = _select(v, budget)
        if sub:
            out[k] = sub
    return out or None


class ScriptedClient:
    """Answers from responses.py, records into the cache, returns what a replay client serves."""

    def __init__(self, cfg, stage: str, book: dict[str, Any]):
        self.cfg, self.stage, self.book = cfg, stage, book
        self._usage: dict[str, Any] = {}

    def _key_of_subtree(self, idx: int, style: str) -> tuple[str, int]:
        seen = self.book.setdefault("order", {})
        if str(idx) not in seen:
            seen[str(idx)] = [style, sum(1 for s, _ in seen.values() if s == style)]
        s, k = seen[str(idx)]
        return s, k

    def _answer(self, req: Any) -> str:
        meta = req.meta
        if self.stage == "tasks":
            style, k = self._key_of_subtree(int(meta["subtree_idx"]), meta["style"])
            if meta["step"] == "stage1":
                roles = _roles(self.book["features"][int(meta["subtree_idx"])])
                selected = _select(roles, [3])
                obj = {"feature_roles_tree": roles, "selected_features_tree": selected,
                       "integration_strategy": R.STRATEGIES[(style, k)]}
                return R.answer("Annotate every leaf, keep three compatible features.", json.dumps(obj))
            return R.stage2_answer(style, k)
        idx = int(meta["task_id"][1:7])
        style, k = self.book["order"][str(idx)]
        task = R.TASKS[(style, k)]
        if self.stage == "solutions":
            if meta["teacher"] == "demo-sloppy":
                return R.SLOPPY[(style, k)]
            return task["solutions"][int(meta["i"])]
        if meta["what"] == "inputs":
            return R.inputs_answer(style, k)
        return task[meta["what"]]

    def run(self, requests: list[Any], desc: str = "") -> list[Any]:
        from xcoder.llm import LLMClient, ResponseCache, record

        cache_dir = self.cfg.llm.cache_dir
        with ResponseCache(cache_dir, shard_name="recorded.jsonl") as cache:
            for req in requests:
                record(cache_dir, req, [self._answer(req)], model=self.cfg.llm.model, cache=cache)
        replay = LLMClient.from_config(self.cfg.llm, stage=self.stage)
        results = replay.run(requests, desc=desc)
        self._usage = replay.usage()
        return results

    def usage(self) -> dict[str, Any]:
        return self._usage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep-existing", action="store_true", help="do not wipe the cache directory first")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(["experiment=demo", f"run.output_dir={tmp}/record"])
        cache_dir = Path(cfg.llm.cache_dir)
        if cache_dir.exists() and not args.keep_existing:
            shutil.rmtree(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / "README.md").write_text(
            "# Demo replay cache\n\n"
            "Recorded for the xcoder project by `data-recipe/demo/build_replay_cache.py` from the\n"
            "hand-written responses in `data-recipe/demo/responses.py`. No model produced any of this text.\n")
        book: dict[str, Any] = {}
        run_stages(_with_stages(cfg, ["features.sample"]))
        book["features"] = {s.idx: json.loads(s.features)
                            for s in read_records(cfg.synth.features.subtrees_parquet, FeatureSubtree)}
        original = llm_io.make_client
        llm_io.make_client = lambda c, stage: ScriptedClient(c, stage, book)  # type: ignore[assignment]
        try:
            run_stages(_with_stages(cfg, ["tasks", "solutions", "tests"]))
        finally:
            llm_io.make_client = original  # type: ignore[assignment]
        log.info("recorded %d subtrees' exchanges into %s", len(book.get("order", {})), cache_dir)
        check = compose(["experiment=demo", f"run.output_dir={tmp}/check"])
        manifest = run_stages(check)
        export = manifest["stages"]["export"]
        print(f"replay check: SFT rows {export['sft_rows']}, RL rows {export['rl_rows']}, kept tasks "
              f"{export['kept_tasks']}")
        print(f"cache: {cache_dir}")
    return 0


def _with_stages(cfg, stages: list[str]):
    from omegaconf import OmegaConf

    c = cfg.copy()
    OmegaConf.update(c, "synth.stages", stages, force_add=False)
    return c


if __name__ == "__main__":
    sys.exit(main())
