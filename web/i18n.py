"""Texts: one gettext catalogue per language (``web/locale/<lang>/LC_MESSAGES/messages.po``),
Dutch first, English second. Message ids are English; the Dutch catalogue translates every one
(a unit test refuses an untranslated or fuzzy Dutch entry); English falls back to the id.

``make messages`` extracts the ids from ``web/`` (Python ``_()`` and the templates' ``{% trans %}``
/ ``_()``), updates both catalogues and compiles them; the compiled ``.mo`` files are committed
(a unit test checks they match their ``.po``), so an image or a fresh clone needs no build step.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from werkzeug.wrappers import Request

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
LANGUAGE_COOKIE = "bp_lang"
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    return gettext.translation("messages", LOCALE_DIR, languages=[lang], fallback=True)


def choose_language(request: Request, preferred: str | None = None) -> str:
    """``?lang=``, then the language cookie, then the resident's own, else Dutch — a Dutch
    municipality's app speaks Dutch unless asked otherwise (not the browser's language)."""
    for candidate in (
        request.args.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        preferred,
    ):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE
