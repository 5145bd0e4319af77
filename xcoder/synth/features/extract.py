"""Feature extraction: seed snippet -> LLM -> validated per-snippet feature tree, journaled.

Each snippet is one unit keyed by (snippet id, code, statement, template version, params, model).
A finished unit (tree or counted drop) is journaled, so a rerun asks only for what is missing; a
failed request (`llm_error`) is not journaled and is retried by the next run. Malformed answers are
dropped with the reason from `extract_json` or the schema (`no_json`, `invalid_json`, `bad_node`, ...).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from xcoder.synth import llm_io
from xcoder.synth.common import Journal, chunked, stable_hash
from xcoder.synth.features.merge import merge_upstream
from xcoder.synth.features.schema import TreeRejected, TreeSchema
from xcoder.synth.features.seeds import Snippet
from xcoder.synth.features.tree import FeatureTree
from xcoder.synth.tasks.parse import ParseFailure

log = logging.getLogger(__name__)


def snippet_key(snippet: Snippet, template_version: str, params: dict[str, Any], model: str | None) -> str:
    return stable_hash("features.extract", snippet.id, snippet.code, snippet.question, template_version, params, model)


def parse_answer(result: Any, schema: TreeSchema) -> tuple[FeatureTree, int]:
    """The validated tree of one ChatResult and the number of disallowed roots dropped from it.

    Raises ParseFailure / TreeRejected (both carry `.reason`).
    """
    obj, _ = llm_io.answer_json(result)
    return schema.validate(obj)


def extract_trees(snippets: Sequence[Snippet], client: Any, template: Any, params: dict[str, Any],
                  schema: TreeSchema, journal: Journal, *, model: str | None = None,
                  batch_size: int = 64) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run extraction for snippets not yet journaled; return the per-snippet trees and counts.

    Trees come back in snippet order as `{"snippet_id", "tree"}` (upstream layout, freq 1).
    """
    keys = [snippet_key(s, template.version_id, params, model) for s in snippets]
    todo = [(k, s) for k, s in zip(keys, snippets) if k not in journal]
    log.info("features.extract: %d snippets, %d already done, %d to do", len(snippets), len(snippets) - len(todo),
             len(todo))
    llm_errors = 0
    bar = tqdm(total=len(todo), desc="features.extract", unit="snippet", disable=not todo)
    for batch in chunked(todo, batch_size):
        requests = [llm_io.build_request(template, {"code": s.code, "question": s.question}, params, model=model,
                                         meta={"unit": k, "snippet_id": s.id, "step": "features.extract"})
                    for k, s in batch]
        results = client.run(requests, desc="features.extract")
        for (key, snippet), result in zip(batch, results):
            try:
                tree, dropped_roots = parse_answer(result, schema)
            except (ParseFailure, TreeRejected) as exc:
                if exc.reason == "llm_error":
                    llm_errors += 1  # not journaled: the next run retries it
                    log.warning("features.extract: snippet %s: request failed: %s", snippet.id, exc.detail)
                    continue
                log.info("features.extract: snippet %s dropped: %s", snippet.id, exc)
                journal.add(key, [], {exc.reason: 1}, snippet_id=snippet.id)
                continue
            journal.add(key, [{"snippet_id": snippet.id, "tree": tree.to_upstream()}],
                        {"disallowed_root": dropped_roots} if dropped_roots else {}, snippet_id=snippet.id)
        bar.update(len(batch))
    bar.close()

    trees: list[dict[str, Any]] = []
    drops: collections.Counter[str] = collections.Counter()
    for entry in journal.entries(keys):
        trees.extend(entry["records"])
        drops.update(entry.get("drops") or {})
    disallowed = drops.pop("disallowed_root", 0)
    if llm_errors:
        drops["llm_error"] += llm_errors
    counts = {"snippets": len(snippets), "extracted": len(trees), "kept": len(trees), "requested_this_run": len(todo),
              "dropped": sum(drops.values()), "drop_reasons": dict(sorted(drops.items())),
              "disallowed_roots_removed": disallowed}
    return trees, counts


def merge_extracted(trees: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> FeatureTree:
    """Merge per-snippet trees: a node's frequency = number of snippets naming it."""
    return merge_upstream((t["tree"] for t in trees), meta=meta)
