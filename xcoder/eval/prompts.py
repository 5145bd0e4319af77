"""Eval prompts and answer extraction.

Templates are data (`xcoder/eval/templates/*.yaml`: name, system, user with Jinja2 fields
`question`, `starter_code`), selected by name from a registry or by path; `version_id` hashes the
file so a template edit never reuses stale generations. Extraction follows LiveCodeBench: drop a
reasoning model's `<think>` block, then take the code between the last two lines containing ```.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import jinja2
import yaml

from xcoder.eval.problems import Problem

TEMPLATE_DIR = Path(__file__).with_name("templates")
# registry: model-family variants. Add a file to TEMPLATE_DIR, or pass a path in eval.prompt.template.
REGISTRY: dict[str, str] = {
    "lcb_generic": "lcb_generic.yaml",      # LCB's generic chat prompt (default; most instruct models)
    "lcb_no_system": "lcb_no_system.yaml",  # no system turn (DeepSeek-R1 distills)
    "lcb_reasoning": "lcb_reasoning.yaml",  # long-CoT reasoning models (Qwen3 / X-Coder)
}


@dataclasses.dataclass(frozen=True)
class EvalPrompt:
    name: str
    system: str
    user: str
    version_id: str

    @classmethod
    def load(cls, name_or_path: str) -> EvalPrompt:
        path = TEMPLATE_DIR / REGISTRY[name_or_path] if name_or_path in REGISTRY else Path(name_or_path)
        if not path.exists():
            raise FileNotFoundError(
                f"eval prompt template {name_or_path!r}: not a registered name ({sorted(REGISTRY)}) nor an existing "
                f"file")
        raw = path.read_bytes()
        data = yaml.safe_load(raw) or {}
        missing = {"name", "user"} - set(data)
        if missing:
            raise ValueError(f"eval prompt template {path}: missing keys {sorted(missing)}")
        return cls(name=str(data["name"]), system=str(data.get("system") or ""), user=str(data["user"]),
                   version_id=f"{data['name']}@{hashlib.sha256(raw).hexdigest()[:12]}")

    def render(self, problem: Problem) -> list[dict[str, str]]:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        fields = {"question": problem.statement, "starter_code": problem.starter_code}
        messages = []
        if self.system.strip():
            messages.append({"role": "system", "content": env.from_string(self.system).render(**fields)})
        messages.append({"role": "user", "content": env.from_string(self.user).render(**fields)})
        return messages


def strip_think(text: str) -> str:
    """The answer part of a reasoning model's output: after the last `</think>`. An opened but
    unclosed `<think>` (reasoning cut by the token budget) has no answer: ""."""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        return ""
    return text


def extract_code(text: str) -> str:
    """LCB's `extract_code`: the lines between the last two lines that contain ```; fewer than two
    such lines -> "" (graded like an empty program). For well-formed output this is the last
    fenced block."""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


def code_from_output(text: str, *, strip_reasoning: bool = True) -> str:
    return extract_code(strip_think(text) if strip_reasoning else text)
