"""Teacher response filters: last closed python block of the final answer, ast-valid, token bounds."""

from __future__ import annotations

import pytest

from xcoder.synth.solutions.parse import check_length, final_code
from xcoder.synth.tasks.parse import ParseFailure


def test_last_python_block_of_the_final_answer_wins():
    text = ("<think>draft\n```python\nprint(0)\n```\n</think>\nFirst:\n```python\nprint(1)\n```\n"
            "Final:\n```python\nprint(2)\n```")
    assert final_code(text) == "print(2)\n"


@pytest.mark.parametrize("text,reason", [
    ("", "empty_response"),
    ("no code here", "no_code_block"),
    ("```python\nprint(1)\n", "unclosed_fence"),
    ("```python\ndef f(:\n```", "syntax_error"),
    ("```cpp\nint main(){}\n```", "no_code_block"),
])
def test_malformed_responses_fail_with_reasons(text, reason):
    with pytest.raises(ParseFailure) as exc:
        final_code(text)
    assert exc.value.reason == reason


def test_single_block_rule_is_optional():
    text = "```python\nx=1\n```\n```python\nx=2\n```"
    assert final_code(text) == "x=2\n"
    with pytest.raises(ParseFailure):
        final_code(text, require_single_block=True)


def test_length_bounds_are_in_tokens():
    check_length(100, min_tokens=10, max_tokens=200)
    with pytest.raises(ParseFailure, match="too_long"):
        check_length(300, min_tokens=10, max_tokens=200)
    with pytest.raises(ParseFailure, match="too_short"):
        check_length(5, min_tokens=10, max_tokens=200)
