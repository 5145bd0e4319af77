"""Stage packages never import each other: what two stages share lives in the core (`xcoder/runs.py`,
`xcoder/swift_args.py`, ...) or in a shared service (`xcoder.judge`, `xcoder.llm`), and those never
import a stage. Scanned with ast, so imports inside functions count too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xcoder"
STAGES = ("synth", "sft", "rl", "eval")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, relative imports resolved."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for __init__.py the package itself
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found += [(node.lineno, f"{module}.{alias.name}" if not node.module else module) for alias in node.names]
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "xcoder" and parts[1] in STAGES else None


def violations() -> list[str]:
    out = []
    for stage in STAGES:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for line, module in imported_modules(path):
                other = stage_of(module)
                if other is not None and other != stage:
                    out.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    return out


def test_no_stage_package_imports_another() -> None:
    assert violations() == []


def test_core_and_shared_services_import_no_stage_package() -> None:
    """The core (xcoder/*.py), the judge and the LLM client sit below every stage: a stage reaches
    them, never the other way (the registry finds stage modules by name, at run time)."""
    paths = [*PACKAGE.glob("*.py"), *(PACKAGE / "judge").rglob("*.py"), *(PACKAGE / "llm").rglob("*.py")]
    found = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {m}"
             for p in sorted(paths) for line, m in imported_modules(p) if stage_of(m)]
    assert found == []


@pytest.mark.parametrize("source,expected", [
    ("from xcoder.sft import data\n", "xcoder.sft"),
    ("import xcoder.eval.run\n", "xcoder.eval.run"),
    ("def f():\n    from ...sft.command import x\n", "xcoder.sft.command"),
])
def test_scanner_sees_absolute_relative_and_nested_imports(tmp_path, monkeypatch, source, expected) -> None:
    fake = tmp_path / "xcoder" / "rl" / "sub"
    fake.mkdir(parents=True)
    (fake / "mod.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "xcoder")
    assert [m for _, m in imported_modules(fake / "mod.py")] == [expected]
