"""The real-pool experiment's data loading, input mutation and scoring (a few problems, real judge)."""

from __future__ import annotations

import json

import pytest

from xcoder.synth.testgen.mutation import mutate_call_inputs
from xcoder.synth.verify.real_pools import docstring_samples, parse_assert_inputs, truncate_completion


def test_completions_are_cut_at_humaneval_stop_sequences():
    body = "    return x + 1\n\ndef helper():\n    pass\n"
    assert truncate_completion(body) == "    return x + 1\n"
    assert truncate_completion("    return 1\n\nif __name__ == '__main__':\n    f()") == "    return 1\n"


def test_model_written_asserts_give_inputs_and_docstrings_give_samples():
    text = "f(1, [2, 3]) == 4\nassert f(2, []) == 0\nassert f(x, 1) == 2\nassert f(1, [2, 3]) != 5\nassert broken(("
    assert parse_assert_inputs(text, "f") == ["1\n[2, 3]", "2\n[]", "1\n[2, 3]"]  # non-literal args skipped
    prompt = 'def f(s):\n    """\n    >>> f("ab")\n    2\n    f("abc") ➞ 3\n    f("") == 0\n    """\n'
    assert docstring_samples(prompt, "f") == [('"ab"', "2"), ('"abc"', "3"), ('""', "0")]


def test_type_aware_mutants_keep_types_differ_from_seeds_and_are_reproducible():
    seeds = ["[1, 2, 3]\n4", '"abc"\n0']
    a = mutate_call_inputs(seeds, 15, seed=1)
    assert a == mutate_call_inputs(seeds, 15, seed=1) and len(a) == len(set(a)) == 15
    assert not set(a) & {s.strip() for s in seeds}
    for text in a:
        args = [json.loads(line) for line in text.split("\n")]
        assert len(args) == 2 and isinstance(args[1], int)
        assert isinstance(args[0], (list, str))
    assert mutate_call_inputs(["not json"], 5) == []


@pytest.mark.slow
def test_real_pools_are_recorded_and_scored_against_humaneval_truth(tmp_path):
    from xcoder.synth.verify.real_experiment import default_rules, evaluate, format_table
    from xcoder.synth.verify.real_pools import load_or_record

    kw = dict(max_candidates=8, max_inputs=10, mutants=4, workers=2, time_s=1.0)
    problems = load_or_record(tmp_path / "cache", **kw)
    assert len(problems) == 164 and len(list((tmp_path / "cache").iterdir())) == 1
    assert load_or_record(tmp_path / "cache", **kw) == problems  # a rerun reads the recorded outputs back
    p = next(p for p in problems if p["task_id"] == "HumanEval/0")
    assert len(p["outputs"]) == 8 and all(len(row) == len(p["tests"]) for row in p["outputs"])
    assert p["truth"][0] is not None  # the canonical solution runs on its own samples
    table = evaluate(problems, default_rules(), [4, 8])
    rows = {(r["rule"], r["n"]): r for r in table}
    # the baseline keeps every pool in which some candidate ran; consensus keeps fewer and is right more often
    assert rows[("plurality", 8)]["kept"] > 0.8 * rows[("plurality", 8)]["pools"]
    assert rows[("consensus", 8)]["kept"] < rows[("plurality", 8)]["kept"]
    assert rows[("consensus", 8)]["golden_precision"] > rows[("plurality", 8)]["golden_precision"]
    assert "| consensus | 8 |" in format_table(table)
