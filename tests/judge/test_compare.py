"""Comparators: one test per LiveCodeBench rule (judge-semantics §4), SandboxFusion's rule (judge-semantics §1),
and the simpler modes."""

from __future__ import annotations

import pytest

from xcoder.judge.compare import COMPARATORS, compare, get_comparator


# --- lcb: LiveCodeBench grade_stdio, rule by rule ------------------------------------------------
def test_lcb_strips_the_whole_text():
    assert compare("lcb", "3", "\n\n  3  \n\n")


def test_lcb_splits_on_newline_and_strips_each_line():
    assert compare("lcb", "1 2\n3", "  1 2  \r\n\t3\t")


def test_lcb_keeps_inner_blank_lines():
    assert compare("lcb", "a\n\nb", "a\n \nb")
    assert not compare("lcb", "a\n\nb", "a\nb")


def test_lcb_line_counts_must_match():
    assert not compare("lcb", "1\n2", "1\n2\n3")
    assert not compare("lcb", "1 2", "1\n2")  # same tokens, different lines


def test_lcb_exact_line_string_equality_passes():
    assert compare("lcb", "Yes\nhello world", "Yes\nhello world")


def test_lcb_decimal_token_equality_fallback():
    assert compare("lcb", "1", "1.0")
    assert compare("lcb", "1 2", "1  2")  # whitespace-split token lists
    assert compare("lcb", "0.50", "0.5")
    assert compare("lcb", "1e3", "1000")


def test_lcb_unconvertible_token_fails():
    assert not compare("lcb", "1 abc", "1  abd")
    assert not compare("lcb", "1 x", "1.0 x")  # one non-decimal token fails the whole line


def test_lcb_is_case_sensitive():
    assert not compare("lcb", "YES", "yes")


def test_lcb_has_no_float_tolerance():
    assert not compare("lcb", "0.3333333", "0.333333")


def test_lcb_nan_never_equal():
    assert not compare("lcb", "1 nan", "1.0 nan")  # Decimal NaN != NaN, as in LCB


# --- sandboxfusion --------------------------------------------------------------------------------
def test_sandboxfusion_is_case_insensitive_and_strips_lines():
    assert compare("sandboxfusion", "YES\nNo", "yes  \n  no")


def test_sandboxfusion_float_relative_tolerance_1e5():
    assert compare("sandboxfusion", "1000000", "1000009")  # rel 9e-6
    assert not compare("sandboxfusion", "1000000", "1000011")  # rel 1.1e-5
    assert not compare("sandboxfusion", "1 2", "1.000001 2")  # float fallback is per whole line


def test_sandboxfusion_line_counts_must_match():
    assert not compare("sandboxfusion", "1\n2", "1\n2\n3")
    assert compare("sandboxfusion", "1\n2\n", "1\n2")


# --- simple modes -----------------------------------------------------------------------------
def test_exact_strip_rstrip_lines_tokens():
    assert compare("exact", "a\n", "a\n") and not compare("exact", "a\n", "a")
    assert compare("strip", " a b \n", "a b") and not compare("strip", "a  b", "a b")
    assert compare("rstrip_newline", "a\n", "a\n\n") and not compare("rstrip_newline", "a", "a ")
    assert compare("lines", "a \n b\n\n", "a\nb") and not compare("lines", "a b", "a  b")
    assert compare("tokens", "1 2\n3", "1\n2 3") and not compare("tokens", "1 2", "1 2 3")


def test_float_tolerance_abs_or_rel():
    assert compare("float", "0.1234567", "0.1234568")
    assert not compare("float", "0.12", "0.13")
    assert compare("float:1e-2", "0.12", "0.125")
    assert compare("float", "abc 1.0", "abc 1.0000000001") and not compare("float", "abc", "abd")
    assert compare("float", "nan", "nan")


def test_unknown_modes_are_errors():
    with pytest.raises(ValueError, match="unknown compare mode"):
        get_comparator("fuzzy")
    with pytest.raises(ValueError, match="tolerance"):
        get_comparator("float:abc")
    assert set(COMPARATORS) >= {"exact", "strip", "lines", "tokens", "float", "lcb", "sandboxfusion"}
