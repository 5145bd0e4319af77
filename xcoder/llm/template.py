"""Versioned prompt templates: a YAML file {name, version?, system?, user} rendered with Jinja2.

The version id is `name@sha256(file)[:12]`, so any edit to a prompt file changes the cache key of
every request built from it (no stale cached answers to an old prompt), while the name stays readable
in provenance and replay-miss messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import jinja2
import yaml

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class TemplateError(ValueError):
    """A prompt template file is malformed, or rendering it lacked a field."""


@dataclasses.dataclass
class PromptTemplate:
    name: str
    user: str
    system: str | None
    version_id: str
    path: Path | None = None
    version: Any = None

    @classmethod
    def load(cls, path: str | Path) -> PromptTemplate:
        path = Path(path)
        raw = path.read_bytes()
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise TemplateError(f"prompt template {path}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise TemplateError(f"prompt template {path}: expected a mapping with name/system/user")
        unknown = set(data) - {"name", "version", "system", "user"}
        if unknown:
            raise TemplateError(f"prompt template {path}: unknown keys {sorted(unknown)}")
        for required in ("name", "user"):
            if not isinstance(data.get(required), str) or not data[required].strip():
                raise TemplateError(f"prompt template {path}: missing or empty {required!r}")
        system = data.get("system")
        if system is not None and not isinstance(system, str):
            raise TemplateError(f"prompt template {path}: 'system' must be a string")
        version_id = f"{data['name']}@{hashlib.sha256(raw).hexdigest()[:12]}"
        tpl = cls(name=data["name"], user=data["user"], system=system, version_id=version_id, path=path,
                  version=data.get("version"))
        tpl._compile()
        return tpl

    def _compile(self) -> None:
        try:
            self._user = _ENV.from_string(self.user)
            self._system = _ENV.from_string(self.system) if self.system else None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"prompt template {self.path or self.name}: Jinja2 syntax error line {exc.lineno}: "
                                f"{exc}") from exc

    def render(self, **fields: Any) -> list[dict[str, str]]:
        """Messages for one request; a field the template uses but the caller did not pass is an error."""
        if not hasattr(self, "_user"):
            self._compile()
        try:
            messages = []
            if self._system is not None:
                messages.append({"role": "system", "content": self._system.render(**fields)})
            messages.append({"role": "user", "content": self._user.render(**fields)})
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"prompt template {self.version_id}: {exc} (fields given: {sorted(fields)})") from exc
        return messages
