"""Stage-1/stage-2 output validation: sections, samples and LeetCode signatures, no repairs."""

from __future__ import annotations

import json

import pytest

from xcoder.synth.tasks.parse import ParseFailure, parse_signature, parse_stage2, validate_stage1

from .samples import AT_QUESTION, CF_QUESTION, LC_QUESTION, LC_STARTER, STAGE1


def test_stage1_valid_output_is_accepted():
    assert validate_stage1(STAGE1)["integration_strategy"].startswith("Sum")


@pytest.mark.parametrize("mutate,reason", [
    (lambda o: o.pop("integration_strategy"), "stage1_missing_keys"),
    (lambda o: o.__setitem__("selected_features_tree", {}), "stage1_too_few_selected"),
    (lambda o: o.__setitem__("integration_strategy", "  "), "stage1_no_strategy"),
])
def test_stage1_broken_outputs_fail_with_a_reason(mutate, reason):
    obj = json.loads(json.dumps(STAGE1))
    mutate(obj)
    with pytest.raises(ParseFailure) as exc:
        validate_stage1(obj)
    assert exc.value.reason == reason


def test_codeforces_samples_are_parsed():
    task = parse_stage2({"question": CF_QUESTION}, "codeforces")
    assert [(s.input, s.output) for s in task.samples] == [("3\n1 2 3", "6"), ("1\n7", "7")]
    assert task.fn_name is None


def test_codeforces_missing_section_is_a_failure():
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"question": CF_QUESTION.replace("## Output", "## Result")}, "codeforces")
    assert exc.value.reason == "missing_section"


def test_codeforces_single_sample_is_too_few():
    one = CF_QUESTION.split("### Input\n```\n1")[0] + "### Note\nx\n"
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"question": one}, "codeforces")
    assert exc.value.reason == "too_few_samples"


def test_atcoder_samples_pair_by_number():
    task = parse_stage2({"question": AT_QUESTION}, "atcoder")
    assert [(s.input, s.output) for s in task.samples] == [("3\n1 5 2", "5"), ("2\n7 7", "7")]


def test_atcoder_unpaired_sample_is_a_failure():
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"question": AT_QUESTION.replace("## Sample Output 2", "## Remark")}, "atcoder")
    assert exc.value.reason == "bad_samples"


def test_leetcode_signature_gives_fn_name_and_call_inputs():
    task = parse_stage2({"question": LC_QUESTION, "starter_code": LC_STARTER}, "leetcode")
    assert task.fn_name == "countPairs" and task.params == ["nums", "k"]
    assert task.samples[0].input == "[1, 2, 3, 4]\n5" and task.samples[0].output == "2"


def test_leetcode_without_starter_code_is_a_failure():
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"question": LC_QUESTION}, "leetcode")
    assert exc.value.reason == "no_signature"


def test_leetcode_sample_names_must_match_signature():
    bad = LC_STARTER.replace("k: int", "target: int")
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"question": LC_QUESTION, "starter_code": bad}, "leetcode")
    assert exc.value.reason == "sample_args_mismatch"


def test_signature_rejects_two_public_methods():
    code = "class Solution:\n    def a(self, x): pass\n    def b(self, y): pass\n"
    with pytest.raises(ParseFailure):
        parse_signature(code)


def test_missing_question_is_not_patched():
    with pytest.raises(ParseFailure) as exc:
        parse_stage2({"title": "x"}, "codeforces")
    assert exc.value.reason == "stage2_no_question"
