"""Feature-tree model: upstream leaf counting, layout round trips, merging, grafting, the seed tree."""

from __future__ import annotations

import json

import pytest

from xcoder.synth.features.merge import graft, merge_trees, merge_upstream
from xcoder.synth.features.schema import TreeRejected, TreeSchema
from xcoder.synth.features.seed import SEED_TREE, load_taxonomy
from xcoder.synth.features.stats import plot_stats, tree_stats
from xcoder.synth.features.tree import (
    FeatureTree,
    TreeError,
    canonical_json,
    from_upstream,
    norm_key,
    upstream_leaf_count,
)

README_EXAMPLE = {"problem type": {"subarray manipulation": {"maximum subarray sum": [
    "Kadane's algorithm", "Divide and Conquer approach"]}}}


def test_upstream_leaf_count_rules():
    assert upstream_leaf_count(README_EXAMPLE) == 2
    # dict with a "feature" key counts once; "programming language" keys are skipped; scalars count 0
    tree = {"algorithm": {"dp": [{"feature": "knapsack", "potential_use": "x"}, "lis"],
                          "greedy": {"feature": "greedy", "potential_use": "y"}},
            "programming language": ["python", "c++"], "programming_language": ["java"], "summary": "text"}
    assert upstream_leaf_count(tree) == 3


def test_from_upstream_drops_programming_language_and_scalars():
    tree = from_upstream({"programming_language": ["python"], "summary": "s", "algorithm": {"sorting": ["merge sort"]}})
    assert [n.name for n in tree.roots.values()] == ["algorithm"]
    assert tree.leaf_names() == ["merge sort"]


def test_to_upstream_leaf_count_equals_leaf_nodes_even_for_mixed_nodes():
    tree = from_upstream({"algorithm": {"dp": {"knapsack": ["0/1 knapsack", "unbounded"]}, "greedy": []},
                          "technique": ["two pointers"]})
    up = tree.to_upstream()
    assert upstream_leaf_count(up) == tree.num_leaves() == 4
    assert up["algorithm"]["greedy"] == {"feature": "greedy"}  # a leaf inside a dict stays countable
    assert from_upstream(up).to_upstream() == up


def test_names_normalise_for_matching_but_keep_display_form():
    assert norm_key("Data_Structures") == norm_key("data structure") == norm_key("  Data  Structure. ")
    assert norm_key("binary search") != norm_key("binary searches tree")
    tree = merge_upstream([{"Data_Structures": ["Segment Tree"]}, {"data structure": ["segment trees"]}])
    (root,) = tree.roots.values()
    assert root.name == "Data Structures" and root.freq == 2
    (leaf,) = root.children.values()
    assert leaf.freq == 2


def test_merge_counts_snippets_dedups_within_a_snippet_and_promotes_lists():
    a = {"algorithm": {"search": ["binary search", "binary search"]}}  # listed twice in one snippet: counts once
    b = {"algorithm": {"search": {"binary search": ["binary search on the answer"]}}}  # leaf -> category
    c = {"algorithm": ["dp"], "technique": ["prefix sums"]}
    tree = merge_upstream([a, b, c])
    assert tree.find(["algorithm"]).freq == 3
    assert tree.find(["algorithm", "search", "binary search"]).freq == 2
    assert tree.find(["algorithm", "search", "binary search", "binary search on the answer"]).freq == 1
    assert tree.find(["technique", "prefix sum"]).freq == 1
    up = tree.to_upstream()
    assert up["algorithm"]["search"] == {"binary search": ["binary search on the answer"]}
    assert upstream_leaf_count(up) == 3


def test_merge_trees_does_not_modify_inputs():
    t1 = merge_upstream([{"a": ["x"]}])
    t2 = merge_upstream([{"a": ["y"]}])
    merged = merge_trees([t1, t2, t1])
    assert merged.find(["a"]).freq == 3 and merged.find(["a", "x"]).freq == 2
    assert t1.find(["a"]).freq == 1 and t1.find(["a", "y"]) is None


def test_graft_adds_only_new_nodes_and_keeps_frequencies():
    base = merge_upstream([{"a": {"b": ["x"]}}] * 5)
    add = from_upstream({"a": {"b": {"x": ["x1"]}, "c": ["z"]}}, freq=1)
    assert graft(base, add) == 3  # x1, c, z
    assert base.find(["a"]).freq == 5 and base.find(["a", "b", "x"]).freq == 5
    assert base.find(["a", "b", "x", "x1"]).freq == 1


def test_frequency_form_round_trip_and_errors(tmp_path):
    tree = merge_upstream([README_EXAMPLE, {"algorithm": ["dp"]}])
    path = tree.save(tmp_path / "t.json")
    again = FeatureTree.load(path)
    assert again.to_json()["tree"] == tree.to_json()["tree"]
    assert again.content_hash() == tree.content_hash()
    (tmp_path / "bad.json").write_text(json.dumps({"format": "xcoder-feature-tree/1", "tree": {"a": {"freq": "x"}}}))
    with pytest.raises(TreeError, match="bad.json: node a"):
        FeatureTree.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        FeatureTree.load(tmp_path / "missing.json")
    plain = FeatureTree.load(_write(tmp_path / "plain.json", README_EXAMPLE))  # upstream layout is accepted
    assert plain.num_leaves() == 2


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_canonical_json_ignores_order():
    assert canonical_json({"a": ["y", "x"], "b": {"c": ["z"]}}) == canonical_json({"b": {"c": ["z"]}, "a": ["x", "y"]})


@pytest.mark.parametrize("obj, reason", [
    (["not", "an", "object"], "not_object"),
    ({"algorithm": {"dp": [1, 2]}}, "bad_node"),
    ({"algorithm": "dp"}, "bad_node"),
    ({"algorithm": {"dp": ["x" * 200]}}, "long_name"),
    ({}, "empty_tree"),
    ({"cooking": ["pasta"]}, "empty_tree"),  # only a disallowed root
    ({"algorithm": {"a": {"b": {"c": {"d": {"e": {"f": ["g"]}}}}}}}, "too_deep"),
])
def test_schema_rejects_malformed_trees_with_a_reason(obj, reason):
    schema = TreeSchema(allowed_roots=["algorithm", "data structure"])
    with pytest.raises(TreeRejected) as info:
        schema.validate(obj)
    assert info.value.reason == reason


def test_schema_removes_disallowed_roots_and_counts_them():
    tree, dropped = TreeSchema(allowed_roots=["algorithm"]).validate(
        {"Algorithms": {"dp": ["knapsack"]}, "cooking": ["pasta"], "programming language": ["python"]})
    assert dropped == 1 and tree.leaf_names() == ["knapsack"]


def test_shipped_seed_tree_is_rebuilt_from_its_taxonomy_and_is_large():
    shipped = FeatureTree.load(SEED_TREE)
    rebuilt = load_taxonomy()
    assert rebuilt.to_json()["tree"] == shipped.to_json()["tree"], "run: python -m xcoder.synth.features.seed"
    stats = tree_stats(shipped)
    assert stats["leaves"] >= 400 and stats["upstream_leaf_count"] == stats["leaves"]
    roots = {norm_key(r) for r in shipped.roots}
    assert {norm_key(r) for r in ("algorithm", "data structure", "mathematics", "problem type", "technique",
                                  "complexity and optimization")} <= roots
    for _, node in shipped.walk():  # inner frequency = sum of children; leaves from tiers
        assert node.freq > 0
        if node.children:
            assert node.freq == sum(c.freq for c in node.children.values())


def test_stats_and_plot(tmp_path):
    tree = merge_upstream([README_EXAMPLE, {"problem type": {"subarray manipulation": ["sliding window"]}}])
    stats = tree_stats(tree)
    assert stats["nodes_per_depth"] == [1, 1, 2, 2] and stats["leaves_per_depth"] == [0, 0, 1, 2]
    assert stats["top_inner"][0] == {"feature": "problem type", "freq": 2}
    png = plot_stats(stats, tmp_path / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_merge_and_stats(tmp_path, capsys):
    from xcoder.synth.features.__main__ import main

    a = _write(tmp_path / "a.json", {"algorithm": {"search": ["binary search"]}})
    b = tmp_path / "b.json"
    merge_upstream([{"algorithm": {"search": ["binary search", "ternary search"]}}]).save(b)
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "m.json")]) == 0
    merged = FeatureTree.load(tmp_path / "m.json")
    assert merged.find(["algorithm", "search", "binary search"]).freq == 2 and merged.num_leaves() == 2
    assert main(["stats", str(tmp_path / "m.json"), "--out", str(tmp_path / "st")]) == 0
    assert json.loads((tmp_path / "st" / "m_stats.json").read_text())["leaves"] == 2
    assert (tmp_path / "st" / "m_stats.png").exists()
    assert "2 leaves" in capsys.readouterr().out
