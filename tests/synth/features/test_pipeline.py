"""Extraction -> merge -> evolution -> sampling end to end, served from a replay cache.

The LLM answers below were written by hand for this project (no model produced them). A first pass
runs the stages against a scripted client that answers from them and writes each answer into a
cache with `xcoder.llm.record`; the real pass then runs the same stages with the real client in
`llm.mode=replay`, so every request must be found in the recorded cache.
"""

from __future__ import annotations

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xcoder.config import compose
from xcoder.llm import ChatResult, Completion, extract_json, record, request_key
from xcoder.records import FeatureSubtree, read_records
from xcoder.synth import llm_io
from xcoder.synth.common import Journal
from xcoder.synth.features import stages
from xcoder.synth.features.evolve import EvolutionStopped, EvolveParams, evolve_tree
from xcoder.synth.features.seeds import SeedSpec, load_snippets
from xcoder.synth.features.tree import FeatureTree, upstream_leaf_count

MODEL = "xcoder-test-recorded"

SNIPPETS = [
    {"id": "bs", "question": "Split the array into k parts minimising the largest part sum.",
     "code": "lo, hi = max(a), sum(a)\nwhile lo < hi:\n    mid = (lo + hi) // 2\n    ..."},
    {"id": "dij", "code": "import heapq\ndist = [INF] * n\nheapq.heappush(pq, (0, s))\n..."},
    {"id": "pref", "code": "cnt = {0: 1}\ns = 0\nfor x in a:\n    s += x\n    ans += cnt.get(s - k, 0)\n..."},
    {"id": "knap", "code": "dp = [0] * (W + 1)\nfor w, v in items:\n    for c in range(W, w - 1, -1): ..."},
    {"id": "bs2", "code": "import bisect\nprint(bisect.bisect_left(a, x))"},
    {"id": "prose", "code": "print(sum(map(int, input().split())))"},
    {"id": "broken", "code": "print(max(a))"},
    {"id": "badnode", "code": "print(min(a))"},
]


def fenced(obj) -> str:
    return "Here is the feature tree.\n```json\n" + json.dumps(obj, indent=1) + "\n```"


EXTRACT_ANSWERS = {  # hand-written, one per snippet
    "bs": fenced({"algorithm": {"search": {"binary search": ["binary search on the answer"]}},
                  "problem type": {"optimization problems": ["minimize the maximum"]},
                  "programming language": ["python"]}),
    "dij": fenced({"algorithm": {"shortest paths": ["Dijkstra's algorithm"]},
                   "data structure": {"heaps": ["binary heap"]},
                   "problem type": {"graph problems": ["shortest route"]}}),
    "pref": fenced({"technique": {"prefix techniques": ["prefix sums", "prefix sum with hash map of counts"]},
                    "data structure": {"hashing": ["hash map counting"]},
                    "problem type": {"array problems": ["subarray sum equals k"]}}),
    "knap": fenced({"algorithm": {"dynamic programming": ["0/1 knapsack"]},
                    "Data_Structures": {"arrays": ["1D dp array"]}, "cooking": ["pasta"]}),
    "bs2": "<think>bisect is a binary search</think>" + fenced(
        {"algorithm": {"Search": {"binary search": ["binary search on the answer", "lower bound"]}}}),
    "prose": "This program reads numbers and prints their sum; it uses no special algorithm.",
    "broken": '```json\n{"algorithm": ["maximum",}\n```',
    "badnode": fenced({"algorithm": {"dp": [1, 2]}}),
}

EXPAND = {  # hand-written evolution: leaf -> (new siblings, new finer children)
    "binary search on the answer": (["exponential search"], ["binary search on a monotone predicate"]),
    "lower bound": (["upper bound"], []),
    "Dijkstra's algorithm": (["0-1 BFS", "Bellman-Ford algorithm"], ["Dijkstra with state expansion"]),
    "0/1 knapsack": (["unbounded knapsack", "bounded knapsack"], ["knapsack with item count limit"]),
    "prefix sums": (["difference array"], ["2D prefix sums"]),
    "prefix sum with hash map of counts": (["prefix XOR with hash map"], []),
    "binary heap": (["indexed priority queue"], []),
    "hash map counting": (["hash set membership"], []),
    "1D dp array": (["rolling dp array"], []),
    "minimize the maximum": (["maximize the minimum"], []),
    "shortest route": (["number of shortest paths"], []),
    "subarray sum equals k": (["longest subarray with sum k"], ["subarray sum divisible by k"]),
}
EVOLVED_NAMES = {n for sib, kids in EXPAND.values() for n in sib + kids}


def expand(tree):
    """The hand-written evolution applied to an upstream-layout subtree."""
    if isinstance(tree, dict):
        return {k: expand(v) for k, v in tree.items()}
    leaves = list(tree)
    for leaf in tree:
        leaves += [s for s in EXPAND.get(leaf, ([], []))[0] if s not in leaves]
    if any(EXPAND.get(leaf, ([], []))[1] for leaf in leaves):
        return {leaf: list(EXPAND.get(leaf, ([], []))[1]) for leaf in leaves}
    return leaves


class RecordingClient:
    """Answers with the hand-written responses and records them for the replay pass."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self.answers: dict[str, str] = {}
        self.evolve_calls = 0

    def answer(self, req) -> str:
        if req.meta["step"] == "features.extract":
            return EXTRACT_ANSWERS[req.meta["snippet_id"]]
        self.evolve_calls += 1
        if self.evolve_calls == 2:
            return "I would add more sorting algorithms."  # malformed: no JSON
        sub, reason = extract_json(req.messages[-1]["content"])
        assert reason is None, "the evolve prompt must carry the subtree as JSON"
        evolved = expand(sub)
        if self.evolve_calls == 3:
            evolved = dict(evolved, cooking=["pasta"])  # a new root: removed and counted
        return fenced(evolved)

    def run(self, requests, desc=None):
        results = []
        for req in requests:
            key = request_key(MODEL, req.messages, req.params, req.template_version)
            if key not in self.answers:
                self.answers[key] = self.answer(req)
                record(self.cache_dir, req, [self.answers[key]], model=MODEL)
            results.append(ChatResult(request=req, completions=[Completion(text=self.answers[key])], key=key))
        return results

    def usage(self):
        return {}


def write_seeds(path):
    path.write_text("".join(json.dumps(s) + "\n" for s in SNIPPETS), encoding="utf-8")
    return path


def overrides(out, seeds, cache, mode):
    return [f"run.output_dir={out}", f"llm.cache_dir={cache}", f"llm.mode={mode}", f"llm.model={MODEL}",
            f"synth.features.extract.seed.path={seeds}", "synth.features.evolve.steps=3",
            "synth.features.evolve.samples_per_step=2", "synth.features.evolve.max_new_per_step=8",
            "synth.features.sample.input_tree=${synth.features.evolved_tree}",
            "synth.features.sample.num_subtrees=20", "synth.features.sample.level_counts=[2,1,2]",
            "synth.features.sample.max_attempts=200", "synth.features.plots=false"]


def test_extract_merge_evolve_sample_from_recorded_responses(tmp_path, monkeypatch):
    seeds = write_seeds(tmp_path / "seeds.jsonl")
    cache = tmp_path / "cache"

    # pass 1: record the hand-written answers for exactly the requests the stages send
    recorder = RecordingClient(cache)
    with monkeypatch.context() as m:
        m.setattr(llm_io, "make_client", lambda cfg, stage: recorder)
        cfg = compose(overrides(tmp_path / "rec", seeds, cache, "live"))
        stages.extract(cfg)
        stages.evolve(cfg)

    # pass 2: the real client, replay only
    cfg = compose(overrides(tmp_path / "run", seeds, cache, "replay"))
    ex = stages.extract(cfg)
    assert ex["snippets"] == 8 and ex["extracted"] == 5
    assert ex["drop_reasons"] == {"bad_node": 1, "invalid_json": 1, "no_json": 1}
    assert ex["disallowed_roots_removed"] == 1
    usage = ex["llm_usage"]["features.extract"]
    assert usage["requests"] == 8 and usage["cache_hits"] == 8 and usage["calls"] == 0

    merged = FeatureTree.load(cfg.synth.features.merged_tree)
    assert merged.find(["algorithm", "search", "binary search"]).freq == 2  # "Search" == "search"
    assert merged.find(["data structure"]).freq == 3  # "Data_Structures" merged in
    assert merged.find(["programming language"]) is None and merged.find(["cooking"]) is None
    assert merged.find(["algorithm"]).freq == 4

    ev = stages.evolve(cfg)
    assert ev["requests"] == 6 and ev["steps_replayed_from_journal"] == 0
    assert ev["drop_reasons"]["no_json"] == 1 and ev["drop_reasons"]["new_root"] == 1
    assert 0 < ev["nodes_added"] <= 3 * 8
    evolved = FeatureTree.load(cfg.synth.features.evolved_tree)
    assert evolved.num_nodes() == merged.num_nodes() + ev["nodes_added"]
    new = {node.name for path, node in evolved.walk() if merged.find(path) is None}
    assert new and new <= EVOLVED_NAMES
    for path, node in merged.walk():  # evolution never changes observed frequencies
        assert evolved.find(path).freq == node.freq
    assert evolved.find(["cooking"]) is None

    sm = stages.sample(cfg)
    assert sm["sampled"] >= 5
    records = read_records(cfg.synth.features.subtrees_parquet, FeatureSubtree)
    for rec in records:
        feats = json.loads(rec.features)
        assert rec.leaf_count == upstream_leaf_count(feats) > 0
        sub = FeatureTree.from_json(feats)
        for path, _ in sub.walk():
            assert evolved.find(path) is not None, path

    # rerun: journals answer everything, the LLM is not asked again and the results are identical
    ex2, ev2 = stages.extract(cfg), stages.evolve(cfg)
    assert ex2["requested_this_run"] == 0 and ex2["llm_usage"]["features.extract"]["requests"] == 0
    assert ev2["requests"] == 0 and ev2["steps_replayed_from_journal"] == 3
    assert FeatureTree.load(cfg.synth.features.evolved_tree).content_hash() == evolved.content_hash()
    assert stages.sample(cfg)["skipped"] is True


class FailingClient:
    def run(self, requests, desc=None):
        return [ChatResult(request=r, error="HTTP 500 after 6 retries") for r in requests]


def test_evolution_step_with_failed_requests_stops_and_is_not_journaled(tmp_path):
    from xcoder.synth.features.merge import merge_upstream

    tree = merge_upstream([{"algorithm": {"search": ["binary search"], "sorting": ["merge sort"]}}])
    journal = Journal(tmp_path / "j.jsonl")
    tpl = llm_io.load_template("features_evolve")
    with pytest.raises(EvolutionStopped, match="step 0: 2 of 2 requests failed"):
        evolve_tree(tree, FailingClient(), tpl, {"temperature": 0.7}, EvolveParams(steps=1, samples_per_step=2),
                    journal)
    assert len(journal) == 0
    # tolerated failures are counted and the step is journaled
    out, counts = evolve_tree(tree, FailingClient(), tpl, {"temperature": 0.7},
                              EvolveParams(steps=1, samples_per_step=2, max_failed_per_step=2), journal)
    assert counts["drop_reasons"] == {"llm_error": 2} and counts["nodes_added"] == 0 and len(journal) == 1


def test_extraction_llm_errors_are_counted_and_retried_next_run(tmp_path):
    from xcoder.synth.features.extract import extract_trees
    from xcoder.synth.features.schema import TreeSchema
    from xcoder.synth.features.seeds import Snippet

    journal = Journal(tmp_path / "j.jsonl")
    tpl = llm_io.load_template("features_extract")
    snippets = [Snippet("a", "print(1)")]
    trees, counts = extract_trees(snippets, FailingClient(), tpl, {}, TreeSchema(), journal)
    assert trees == [] and counts["drop_reasons"] == {"llm_error": 1} and len(journal) == 0


def test_seed_loading_jsonl_parquet_and_taco_style_lists(tmp_path):
    seeds = write_seeds(tmp_path / "s.jsonl")
    snippets, counts = load_snippets(SeedSpec(path=str(seeds), limit=3))
    assert [s.id for s in snippets] == ["bs", "dij", "pref"] and snippets[0].question.startswith("Split")
    rows = [{"question": "q1", "solutions": json.dumps(["a = 1", "b = 2", "c = 3"])},
            {"question": "q2", "solutions": "[]"}, {"question": "q1", "solutions": json.dumps(["a = 1"])}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "taco.parquet")
    spec = SeedSpec(path=str(tmp_path / "taco.parquet"), code_field="solutions", id_field=None,
                    solutions_per_item=2, max_code_chars=3)
    snippets, counts = load_snippets(spec)
    assert [s.code for s in snippets] == ["a =", "b ="] and all(s.question == "q1" for s in snippets)
    assert counts == {"rows": 3, "no_code": 1, "duplicate": 1, "truncated_code": 2}
    with pytest.raises(ValueError, match="missing code field 'code'"):
        load_snippets(SeedSpec(path=str(tmp_path / "taco.parquet")))
    with pytest.raises(ValueError, match="exactly one"):
        load_snippets(SeedSpec())
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_snippets(SeedSpec(path=str(tmp_path / "nope.jsonl")))


def test_expand_helper_is_pure():
    sub = {"algorithm": {"search": ["lower bound"]}}
    before = copy.deepcopy(sub)
    assert expand(sub) == {"algorithm": {"search": ["lower bound", "upper bound"]}}
    assert sub == before


class Killed(Exception):
    pass


class DyingClient(RecordingClient):
    """Answers like the recorder, then dies (as a killed process would) on call number `die_at`."""

    def __init__(self, cache_dir, die_at):
        super().__init__(cache_dir)
        self.die_at = die_at
        self.calls = 0
        self.requests = 0

    def run(self, requests, desc=None):
        self.calls += 1
        if self.calls == self.die_at:
            raise Killed()
        self.requests += len(requests)
        return super().run(requests, desc)


def test_killed_extraction_and_evolution_resume_without_repeating_work(tmp_path, monkeypatch):
    seeds = write_seeds(tmp_path / "seeds.jsonl")
    cfg = compose(overrides(tmp_path / "run", seeds, tmp_path / "cache", "live") + ["synth.batch_size=3"])

    dying = DyingClient(tmp_path / "cache", die_at=2)  # batch 1 (3 snippets) done, batch 2 dies
    monkeypatch.setattr(llm_io, "make_client", lambda cfg, stage: dying)
    with pytest.raises(Killed):
        stages.extract(cfg)
    resumed = DyingClient(tmp_path / "cache", die_at=0)
    monkeypatch.setattr(llm_io, "make_client", lambda cfg, stage: resumed)
    counts = stages.extract(cfg)
    assert counts["requested_this_run"] == 5 and resumed.requests == 5  # only the 5 not journaled
    assert counts["extracted"] == 5 and counts["dropped"] == 3

    dying = DyingClient(tmp_path / "cache", die_at=3)  # steps 0 and 1 done, step 2 dies
    monkeypatch.setattr(llm_io, "make_client", lambda cfg, stage: dying)
    with pytest.raises(Killed):
        stages.evolve(cfg)
    resumed = DyingClient(tmp_path / "cache", die_at=0)
    monkeypatch.setattr(llm_io, "make_client", lambda cfg, stage: resumed)
    counts = stages.evolve(cfg)
    assert counts["steps_replayed_from_journal"] == 2 and counts["requests"] == 2 and resumed.requests == 2


def test_seed_loading_from_a_hub_id_calls_datasets_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [{"question": "q", "solutions": json.dumps(["x = 1", "y = 2"]), "id": 7}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = SeedSpec(hub_id="likaixin/TACO-verified", code_field="solutions", solutions_per_item=5)
    snippets, counts = load_snippets(spec)
    assert calls == [("likaixin/TACO-verified", None, "train")]
    assert [(s.id, s.code) for s in snippets] == [("7#0", "x = 1"), ("7#1", "y = 2")]
