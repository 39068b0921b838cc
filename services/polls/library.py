"""The template library: ready-made polls in Dutch, one YAML file each in ``templates/``.

A template is a poll definition (docs/pollspec.md) plus its ``id`` and a one-line
``description`` for staff. Every template is validated when the library loads, so a broken
file stops the service (and the test suite) instead of reaching a municipality.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.common.errors import NotFound
from services.common.pollspec import validate_definition

TEMPLATE_DIR = Path(__file__).parent / "templates"


class TemplateError(RuntimeError):
    pass


def load_template(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("id") != path.stem:
        raise TemplateError(f"{path.name}: 'id' must equal the file name ({path.stem})")
    definition = {k: v for k, v in data.items() if k not in ("id", "description")}
    try:
        validate_definition(definition)
    except ValueError as exc:
        raise TemplateError(f"{path.name}: {exc}") from exc
    return {"id": data["id"], "description": data.get("description", ""), "definition": definition}


@lru_cache(maxsize=1)
def library() -> dict[str, dict[str, Any]]:
    return {p.stem: load_template(p) for p in sorted(TEMPLATE_DIR.glob("*.yaml"))}


def summary(template: dict[str, Any]) -> dict[str, Any]:
    d = template["definition"]
    return {
        "id": template["id"],
        "theme": d["theme"],
        "title": d["title"],
        "description": template["description"],
        "estimated_minutes": d["estimated_minutes"],
        "question_count": len(d["questions"]),
        "language": d["language"],
    }


def list_templates(theme: str | None = None) -> list[dict[str, Any]]:
    return [
        summary(t) for t in library().values() if theme is None or t["definition"]["theme"] == theme
    ]


def get_template(template_id: str) -> dict[str, Any]:
    try:
        template = library()[template_id]
    except KeyError:
        raise NotFound(f"no template {template_id!r}") from None
    return {**summary(template), "definition": copy.deepcopy(template["definition"])}
