"""What residents read on their lock screen and in their inbox, in Dutch or English.

Short and plain: a title of at most ~50 characters and a body of at most ~120, so they fit a
notification without being cut off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.notify.audience import AMSTERDAM

MEASURE_STATUS = {
    "nl": {
        "planned": "gepland",
        "in_progress": "in uitvoering",
        "done": "klaar",
        "dropped": "gaat niet door",
    },
    "en": {
        "planned": "planned",
        "in_progress": "in progress",
        "done": "done",
        "dropped": "dropped",
    },
}

MONTHS_NL = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)


def _date(value: datetime | None, language: str) -> str:
    if value is None:
        return ""
    local = value.astimezone(AMSTERDAM)
    if language == "nl":
        return f"{local.day} {MONTHS_NL[local.month - 1]}"
    return local.strftime("%-d %B")


def notification(kind: str, language: str, context: dict[str, Any]) -> dict[str, str]:
    """Title and body for one delivery; ``context`` holds the poll or notice fields."""
    nl = language != "en"
    title = context.get("title", "")
    if kind == "invitation":
        minutes = context.get("minutes")
        return {
            "title": f"Nieuwe peiling: {title}" if nl else f"New poll: {title}",
            "body": (
                f"Uw mening over uw buurt telt. Invullen duurt ongeveer {minutes} minuten."
                if nl
                else f"Your view of your neighbourhood counts. It takes about {minutes} minutes."
            ),
        }
    if kind == "reminder":
        until = _date(context.get("closes_at"), language)
        return {
            "title": f"Herinnering: {title}" if nl else f"Reminder: {title}",
            "body": (
                (
                    f"U heeft de peiling nog niet ingevuld. Dat kan tot en met {until}."
                    if until
                    else "U heeft de peiling nog niet ingevuld."
                )
                if nl
                else (
                    f"You have not answered yet. The poll is open until {until}."
                    if until
                    else "You have not answered yet."
                )
            ),
        }
    if kind == "link":  # asked for after revoking the link (links.py)
        return {
            "title": f"Uw nieuwe link: {title}" if nl else f"Your new link: {title}",
            "body": (
                "U heeft een nieuwe persoonlijke link aangevraagd. De vorige link blijft "
                "ingetrokken."
                if nl
                else "You asked for a new personal link. The previous link stays revoked."
            ),
        }
    if kind == "feedback":
        return {
            "title": "Wat we met uw mening doen" if nl else "What we do with your views",
            "body": (
                f"De gemeente laat weten wat de peiling opleverde: {title}"
                if nl
                else f"The municipality reports back on the poll: {title}"
            ),
        }
    status = MEASURE_STATUS["nl" if nl else "en"].get(context.get("status", ""), "")
    return {
        "title": f"Update: {title}",
        "body": (
            f"Deze maatregel is nu {status}. Lees meer in de app."
            if nl
            else f"This measure is now {status}. Read more in the app."
        ),
    }


def personal_link(language: str, closes_at: datetime | None) -> dict[str, str]:
    """What an invitation or reminder e-mail says around its personal link (issue 14): that it
    opens the poll without the app, that forwarding it lets someone else answer once in the
    participant's name, and how to revoke it. ``intro``, ``button``, ``forwarding`` and
    ``revoke`` (followed by the revocation link)."""
    until = _date(closes_at, language)
    if language != "en":
        period = f" (tot en met {until})" if until else ""
        return {
            "intro": "Geen app? Beantwoord de vragen in uw browser via uw persoonlijke link:",
            "button": "Vragen beantwoorden",
            "forwarding": (
                "Deze link is alleen voor u. U kunt ermee antwoorden zolang de peiling open is"
                f"{period}; zodra uw antwoord binnen is, werkt hij niet meer. Stuurt u deze "
                "e-mail door, dan kan iemand anders met de link één keer namens u antwoorden."
            ),
            "revoke": (
                "Wilt u dat voorkomen, of heeft u de e-mail per ongeluk doorgestuurd? Trek de "
                "link dan in; daarna werkt hij niet meer:"
            ),
        }
    period = f" (until {until})" if until else ""
    return {
        "intro": "No app? Answer the questions in your browser with your personal link:",
        "button": "Answer the questions",
        "forwarding": (
            f"This link is for you alone. You can answer with it while the poll is open{period}; "
            "once your answer is in, it no longer works. If you forward this e-mail, someone "
            "else can use the link to answer once in your name."
        ),
        "revoke": (
            "To prevent that, or if you forwarded it by mistake, revoke the link; after that it "
            "no longer works:"
        ),
    }
