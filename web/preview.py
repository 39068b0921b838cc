"""A poll as the resident will see it, for the staff dashboard: the resident app's own question
templates (``resident/_questions.html``) inside ``staff/_preview.html``, from a template of the
library, a saved draft, or the edit form's unsaved texts."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.datastructures import MultiDict

from web import pollform
from web.pages import PageContext


def preview_values(ctx: PageContext, definition: dict[str, Any]) -> dict[str, Any]:
    """What ``staff/_preview.html`` needs: the resident app's own question templates
    (``resident/_questions.html``) with an empty form."""
    try:
        questions = pollform.questions_view(definition, ctx.lang)
    except (KeyError, TypeError, ValueError):  # half-edited: say so instead of a 500
        questions = None
    return {
        "preview": {"definition": definition, "questions": questions},
        "preview_form": MultiDict(),
        "field_name": pollform.field_name,
        "dont_know_label": pollform.dont_know_label,
        "tile_url": "",
        "tile_attribution": "",
    }


def base_definition(ctx: PageContext, poll: dict[str, Any]) -> dict[str, Any]:
    """The definition the edit form was made from (its question numbers name these questions):
    the form's hidden copy after a "Voorbeeld bijwerken", else the saved one. The service checks
    whatever is saved, so a changed copy can do no more than the JSON route allows."""
    raw = ctx.form.get("base", "")
    if raw:
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        if isinstance(found, dict) and isinstance(found.get("questions"), list):
            return found
    return poll["definition"]
