"""Contest-date windows ("LCB v5", "LCB v6"): the paper's versions are date ranges, and scores
move with the range, so each window is named, pinned in config and printed with every score."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from xcoder.eval.problems import Problem, difficulty_mix


@dataclasses.dataclass(frozen=True)
class Window:
    """Problems with start <= contest_date <= end (LCB's rule: inclusive, `end` parsed as
    midnight, so a contest at 2025-02-01T00:00 is in both v5 and v6 and one at 19:30 is not in v5)."""

    name: str
    start: dt.datetime | None
    end: dt.datetime | None

    def contains(self, problem: Problem) -> bool:
        if self.start is None and self.end is None:
            return True
        if problem.contest_date is None:
            return False
        if self.start is not None and problem.contest_date < self.start:
            return False
        return not (self.end is not None and problem.contest_date > self.end)

    def select(self, problems: Sequence[Problem]) -> list[Problem]:
        return [p for p in problems if self.contains(p)]

    def describe(self) -> str:
        fmt = lambda d: d.date().isoformat() if d is not None else "*"  # noqa: E731
        return f"{self.name} [{fmt(self.start)} .. {fmt(self.end)}]"


def _date(value: Any, where: str) -> dt.datetime | None:
    if value in (None, "", "null"):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"eval.windows.{where}: bad date {value!r} (use YYYY-MM-DD)") from exc


def windows_from_config(cfg: Mapping[str, Any] | None) -> list[Window]:
    """`{name: {start, end}}` -> windows; None or an empty mapping means one window `all` (no dates)."""
    if not cfg:
        return [Window("all", None, None)]
    out = []
    for name, spec in cfg.items():
        spec = spec or {}
        unknown = set(spec) - {"start", "end"}
        if unknown:
            raise ValueError(f"eval.windows.{name}: unknown keys {sorted(unknown)} (allowed: start, end)")
        start, end = _date(spec.get("start"), f"{name}.start"), _date(spec.get("end"), f"{name}.end")
        if start and end and start > end:
            raise ValueError(f"eval.windows.{name}: start {start.date()} is after end {end.date()}")
        out.append(Window(str(name), start, end))
    return out


def union_bounds(windows: Sequence[Window]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The smallest date range covering every window (None = unbounded)."""
    starts = [w.start for w in windows]
    ends = [w.end for w in windows]
    return (None if None in starts else min(starts)), (None if None in ends else max(ends))  # type: ignore[type-var]


def window_summary(window: Window, problems: Sequence[Problem]) -> dict[str, Any]:
    """What every score is printed with: the range, the problem count and the difficulty mix."""
    return {
        "name": window.name,
        "start": window.start.date().isoformat() if window.start else None,
        "end": window.end.date().isoformat() if window.end else None,
        "problems": len(problems),
        "difficulty": difficulty_mix(problems),
        "known_issue_problems": sorted(p.problem_id for p in problems if p.metadata.get("known_issue")),
    }
