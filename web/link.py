"""Answering without the app: the personal link in an invitation or reminder e-mail (issue 14).

The e-mail links to ``/app/<municipality>/link?t=<token>`` (and ``…/link/intrekken?t=…`` to
revoke it). The token (typ ``poll+link``: this poll, this participant, until the poll closes) is
signed by notify and verified here with notify's public key (``Authenticator.verify_link``).
The first request exchanges it at once for a short session cookie (``LinkSessions``: 30 minutes,
HttpOnly, only under ``/app/<municipality>/link``) and redirects (303) to the same address
without it, so the token is in one request line only — which the gateway never logs (its access
log is off; no log line of ours holds a URL with a query) — and never in a Referer, the browser's
address bar after the redirect, or a page. A link carried in the URL fragment would keep it from
the server altogether, but needs JavaScript to be posted, and the resident app works without it.

On every use the gateway asks notify (``link_status``) whether the link was revoked or the poll
answered, so a revocation takes effect at once. Answers go through the same route function as
the app's (``submit``, by ``ctx.api``) with a principal whose claims name the one poll the link
is for and the channel ``link``: the same validation, eligibility, idempotency and one answer per
participant (responses refuses a second). Once answered, the page shows the receipt or "already
answered", never the form again.

A revoked link can be asked to be reissued (``…/link/nieuw``, notify's ``reissue_link``):
the revoked-link page and the revocation's confirmation offer "Nieuwe link aanvragen", a form
(POST, CSRF) keyed by the session the revoked link was exchanged for — the token's participant,
poll and generation — never by anything the asker types. The new link goes by e-mail to the
participant's own address and is never shown; the page after says the same whatever happened
(sent, answered, closed, …), except past the limit of requests, when it says to contact the
municipality. Sessions name their link's generation, so once a new link is issued every
session of an older one is revoked, and revoking through an old link leaves the new one alone.

Bad links are pages with a 4xx that say what to do: tampered or cut off 400, for another
municipality 400, expired or the poll closed 410, revoked 410, the participant gone 410, a
browser without the session (cookie expired) 401.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from werkzeug.wrappers import Response

from gateway.auth import Principal
from gateway.errors import RouteNotFound
from services.common import tokens
from services.common.errors import InvalidInput, NotFound
from web import pollform
from web.messages import N_
from web.pages import PageContext, app_links, municipality, page
from web.resident import field_errors, invoke_submit, poll_form
from web.session import LINK_COOKIE, LINK_SESSION_TTL

BASE = "/app/<municipality_code>/link"
RELINK = "/nieuw"  # asking for a new link after revoking one
# The session's claims handed to the route functions, as a resident access token has them.
PROFILE = ("mun", "wijk", "buurt", "lang", "age_band", "sex", "self_selected", "kind")

PROBLEMS = {
    "invalid": (
        400,
        N_("This link does not work"),
        N_(
            "The link is not complete or has been changed. Open the link from the e-mail again, "
            "or copy the whole address from the e-mail into your browser."
        ),
    ),
    "expired": (
        410,
        N_("This poll has closed"),
        N_(
            "The link worked while the poll was open. You can no longer answer, but you can read "
            "what the municipality does with the answers."
        ),
    ),
    "revoked": (
        410,
        N_("This link has been revoked"),
        N_(
            "The link was revoked by the person it was sent to, so nobody can answer with it "
            "any more. Was that not you? Contact the municipality."
        ),
    ),
    "unknown": (
        410,
        N_("This link no longer works"),
        N_(
            "The person this link was sent to no longer takes part in the panel, or was not "
            "invited to this poll. Nothing else needs doing."
        ),
    ),
    "session": (
        401,
        N_("Open the link from the e-mail again"),
        N_(
            "For your safety this page works for a short while after you open the link. Open "
            "the link in the invitation e-mail again to continue."
        ),
    ),
}


def link_page(method: str, path: str, **kwargs: Any):
    return page(method, BASE + path, app="resident", personal=True, **kwargs)


def problem(ctx: PageContext, found: dict[str, Any], kind: str) -> Response:
    status, heading, advice = PROBLEMS[kind]
    return ctx.render(
        "resident/link_problem.html",
        status=status,
        municipality=found,
        app=app_links(found),
        heading=ctx._(heading),
        advice=ctx._(advice),
        kind=kind,
        # Only a revoked link's own session reaches "revoked": it may ask for a new link.
        relink=cookie_path(found) + RELINK if kind == "revoked" else None,
    )


def cookie_path(found: dict[str, Any]) -> str:
    return found["base"] + "link"


def exchange(ctx: PageContext, found: dict[str, Any], token: str, then: str) -> Response:
    """The token of the address for a session cookie, and a redirect to ``then`` (the address
    without it). Nothing here logs or shows the token."""
    try:
        claims = ctx.gateway.authenticator.verify_link(token)
    except tokens.TokenError as exc:
        return problem(ctx, found, "expired" if exc.reason == tokens.EXPIRED else "invalid")
    if claims["mun"] != found["code"]:
        return problem(ctx, found, "invalid")
    try:
        profile = ctx.gateway.call("panel", "resident_claims", claims["sub"])
    except NotFound:
        return problem(ctx, found, "unknown")
    session = {
        "sub": claims["sub"],
        "poll": claims["poll"],
        **{k: profile.get(k) for k in PROFILE},
        "mun": claims["mun"],
        "gen": claims["gen"],
        "exp": int(min(time.time() + LINK_SESSION_TTL, claims["exp"])),
    }
    keep(ctx, found, session)
    return ctx.redirect(then)


def keep(ctx: PageContext, found: dict[str, Any], session: dict[str, Any]) -> None:
    ctx.jar.set(
        LINK_COOKIE,
        ctx.web.link_sessions.dumps(session),
        path=cookie_path(found),
        max_age=max(1, int(session["exp"] - time.time())),
    )


def current(ctx: PageContext, found: dict[str, Any]) -> dict[str, Any] | None:
    """The link session of this browser, with the principal the route functions get."""
    session = ctx.web.link_sessions.loads(ctx.request.cookies.get(LINK_COOKIE))
    if session is None or session.get("mun") != found["code"]:
        return None
    claims = {k: session.get(k) for k in PROFILE}
    ctx.principal = Principal(
        kind="resident",
        subject=session["sub"],
        municipality_code=session["mun"],
        role=None,
        claims={**claims, "sub": session["sub"], "poll": session["poll"], "channel": "link"},
    )
    return session


def status_of(ctx: PageContext, session: dict[str, Any]) -> str:
    """notify's word on the session's link (its generation): open, answered, revoked or
    unknown."""
    return str(
        ctx.gateway.call(
            "notify", "link_status", session["poll"], session["sub"], generation(session)
        )
    )


def generation(session: dict[str, Any]) -> int:
    """The generation of the link a session was opened with (0: the first, or a session
    from before links were reissued)."""
    gen = session.get("gen", 0)
    return gen if isinstance(gen, int) and not isinstance(gen, bool) and gen >= 0 else 0


@link_page("GET,POST", "", summary="Answer a poll from the personal link in an e-mail")
def link_poll(ctx: PageContext) -> Response:
    found = municipality(ctx, ctx.params["municipality_code"])
    token = ctx.request.args.get("t")
    if token is not None:
        return exchange(ctx, found, token, cookie_path(found))
    session = current(ctx, found)
    if session is None:
        return problem(ctx, found, "session")
    if session.get("rcpt"):  # answered in this browser: what became of it
        return receipt(ctx, found, session)
    state = status_of(ctx, session)
    if state in ("revoked", "unknown"):
        return problem(ctx, found, state)
    if state == "answered":
        return show(ctx, found, "resident/link_answered.html")
    poll_id = session["poll"]
    if ctx.gateway.open_polls.get(poll_id) is None:
        return problem(ctx, found, "expired")
    try:
        shown = ctx.api("poll_detail", params={"poll_id": poll_id}).body
    except RouteNotFound:  # not (or no longer) meant for this participant
        return problem(ctx, found, "unknown")
    definition = shown["definition"]
    errors: list[dict[str, str]] = []
    key = ctx.form.get("idempotency_key") or str(uuid.uuid4())
    if ctx.request.method == "POST":
        try:
            answers = pollform.answers_from_form(definition, ctx.form)
            reply = invoke_submit(ctx, poll_id, answers, key)
        except InvalidInput as exc:
            errors = field_errors(exc)
        else:
            keep(ctx, found, {**session, "rcpt": reply.body["receipt_id"]})
            return ctx.redirect(cookie_path(found))
    return show(ctx, found, "resident/link_poll.html", **poll_form(ctx, shown, errors, key))


def receipt(ctx: PageContext, found: dict[str, Any], session: dict[str, Any]) -> Response:
    state = ctx.api("receipt", params={"receipt_id": session["rcpt"]}).body
    fragment = ctx.request.headers.get("HX-Request") == "true"
    return show(
        ctx,
        found,
        "resident/_receipt.html" if fragment else "resident/link_receipt.html",
        receipt=state,
        draft_poll="",
    )


def show(ctx: PageContext, found: dict[str, Any], template: str, **values: Any) -> Response:
    return ctx.render(
        template,
        municipality=found,
        app=app_links(found),
        link=cookie_path(found),
        relink=cookie_path(found) + RELINK,
        **values,
    )


@link_page("GET,POST", "/intrekken", summary="Revoke my personal link to a poll")
def link_revoke(ctx: PageContext) -> Response:
    found = municipality(ctx, ctx.params["municipality_code"])
    token = ctx.request.args.get("t")
    if token is not None:
        return exchange(ctx, found, token, cookie_path(found) + "/intrekken")
    session = current(ctx, found)
    if session is None:
        return problem(ctx, found, "session")
    if ctx.request.method == "POST":
        state = str(
            ctx.gateway.call(
                "notify", "revoke_link", session["poll"], session["sub"], generation(session)
            )
        )
        # The session stays: it answers nothing any more (notify says revoked), but it is
        # what asks for a new link from the confirmation page.
        if state == "unknown":
            return problem(ctx, found, "unknown")
        return show(ctx, found, "resident/link_revoked.html", state=state)
    state = status_of(ctx, session)
    if state in ("revoked", "unknown"):
        return problem(ctx, found, state)
    return show(ctx, found, "resident/link_revoke.html", state=state)


@link_page("GET,POST", RELINK, summary="Ask for a new personal link after revoking one")
def link_reissue(ctx: PageContext) -> Response:
    """The form, and on POST notify's ``reissue_link`` for the session's revoked link. The
    answer is the same page whatever happened — sent, answered, closed, unknown — so it tells
    the asker (who may hold a forwarded link) nothing; past the limit it says to contact the
    municipality instead. The new link is never on screen: it goes by e-mail."""
    found = municipality(ctx, ctx.params["municipality_code"])
    session = current(ctx, found)
    if session is None:
        return problem(ctx, found, "session")
    if ctx.request.method == "POST":
        outcome = str(
            ctx.gateway.call(
                "notify", "reissue_link", session["poll"], session["sub"], generation(session)
            )
        )
        return show(ctx, found, "resident/link_reissued.html", limited=outcome == "limited")
    if status_of(ctx, session) == "open":  # this link works: nothing to ask for
        return ctx.redirect(cookie_path(found))
    return show(ctx, found, "resident/link_reissue.html")
