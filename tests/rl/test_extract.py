"""Which code gets graded: the last python block of the final answer, with named failure reasons."""

from xcoder.rl.extract import extract_code, final_answer


def test_last_block_of_final_answer_is_graded_not_the_draft_in_reasoning():
    text = ("<think>try\n```python\nprint('draft')\n```\n</think>\nfinal:\n```python\nprint(1)\n```\n"
            "more\n```python\nprint(2)\n```")
    assert extract_code(text).code.strip() == "print(2)"


def test_reasoning_only_draft_is_not_graded():
    text = "<think>```python\nprint('draft')\n```</think>Sorry, no solution."
    got = extract_code(text)
    assert got.code is None and got.failure == "no_code"


def test_unfinished_think_unclosed_fence_and_syntax_error_are_named():
    assert extract_code("<think>still thinking ```python\nprint(1)\n```").failure == "unfinished_think"
    assert extract_code("answer\n```python\nprint(1)\nprint(").failure == "unclosed_fence"
    assert extract_code("```python\ndef f(:\n```").failure == "syntax_error"
    assert extract_code("plain text").failure == "no_code"
    assert extract_code("```python\n\n```").failure == "no_code"


def test_python_tag_beats_untagged_output_sample_and_other_languages_are_skipped():
    text = "```python\nprint(3)\n```\nExample output:\n```\n3\n```\n```cpp\nint main(){}\n```"
    assert extract_code(text).code.strip() == "print(3)"
    assert extract_code("```\nprint(4)\n```").code.strip() == "print(4)"
    assert extract_code("```py\nprint(5)\n```").code.strip() == "print(5)"


def test_final_answer_without_think_tags_is_the_whole_text():
    assert final_answer("abc") == "abc"
    assert final_answer("<think>x</think>y") == "y"
    assert final_answer("<think>x") is None
