"""The resident app, one per municipality under ``/app/<municipality_code>/``: join with the
letter code (or by e-mail), confirm the buurt, answer open polls, see the receipt, get
notifications (Web Push through the service worker), read the feedback and react, the public
timeline, leave the panel. Mobile first; every page works without JavaScript except Web Push
and the map picker.

Every page gets its data from the gateway's routes (``ctx.api``) with the resident's token.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from babel.dates import format_date
from werkzeug.wrappers import Request, Response

from gateway.errors import RouteNotFound
from services.common.errors import Conflict, InvalidInput, NotPermitted
from services.common.intake import PARTICIPANT_KINDS
from web import pollform
from web.pages import (
    NotSignedIn,
    PageContext,
    app_links,
    forget_session,
    load_session,
    municipality,
    page,
    start_session,
)
from web.session import RESIDENT
from web.static_files import make_asset, send_asset
from web.theme import icon_svg, manifest

BASE = "/app/<municipality_code>"
SEX_CHOICES = ("vrouw", "man", "anders", "zeg_ik_liever_niet")


# --- helpers ----------------------------------------------------------------------------------


def resident_page(method: str, path: str, **kwargs: Any):
    return page(method, BASE + path, app="resident", **kwargs)


def app_context(ctx: PageContext) -> dict[str, Any]:
    """The municipality (404 for a code that names none) and the resident, if signed in here."""
    found = municipality(ctx, ctx.params["municipality_code"])
    if load_session(ctx, RESIDENT) and ctx.claims.get("mun") != found["code"]:
        # Signed in with another municipality's app: not a session for this one.
        ctx.tokens, ctx.claims = {}, {}
    return found


def signed_in(ctx: PageContext) -> dict[str, Any]:
    found = app_context(ctx)
    if not ctx.signed_in:
        raise NotSignedIn
    return found


def show(ctx: PageContext, template: str, found: dict[str, Any], **values: Any) -> Response:
    return ctx.render(
        template,
        municipality=found,
        app=app_links(found),
        **values,
    )


def field_errors(exc: InvalidInput, prefix: str = "") -> list[dict[str, str]]:
    """The service's field errors, each with the id of the input it is about."""
    found = []
    for error in exc.errors or [{"field": "", "code": "invalid", "message": exc.message}]:
        name = str(error.get("field", "")).removeprefix("body.")
        found.append({**error, "field": name, "anchor": prefix + anchor_for(name)})
    return found


def anchor_for(field: str) -> str:
    if field.startswith("answers."):
        return "q-" + field.split(".", 1)[1].split(".")[0].split("[")[0]
    return "f-" + (field.split(".")[0].split("[")[0] or "form")


def areas(ctx: PageContext, code: str) -> list[dict[str, Any]]:
    """Wijken with their buurten, for the buurt list."""
    found = ctx.api("public_areas", params={"municipality_code": code}).body
    wijken = {a["code"]: {**a, "buurten": []} for a in found if a["level"] == "wijk"}
    for a in found:
        if a["level"] == "buurt" and a["parent_code"] in wijken:
            wijken[a["parent_code"]]["buurten"].append(a)
    for w in wijken.values():
        w["buurten"].sort(key=lambda b: b["name"])
    return sorted(wijken.values(), key=lambda w: w["name"])


def profile_body(ctx: PageContext) -> dict[str, Any]:
    form = ctx.form
    body: dict[str, Any] = {
        "consent": form.get("consent") == "ja",
        "language": ctx.lang,
    }
    if form.get("buurt_code"):
        body["buurt_code"] = form["buurt_code"]
    year = form.get("birth_year", "").strip()
    if year:
        body["birth_year"] = int(year) if year.isdigit() else year
    if form.get("sex") in SEX_CHOICES:
        body["sex"] = form["sex"]
    # A business or organisation (issue 14): its kind (else the letter's code decides), its
    # KvK number and name. The panel checks them and says which field to fix.
    if form.get("kind") in PARTICIPANT_KINDS:
        body["kind"] = form["kind"]
    for key in ("kvk_number", "organisation_name"):
        if form.get(key, "").strip():
            body[key] = form[key].strip()
    return body


def kvk_taken() -> list[dict[str, str]]:
    """The KvK number is in the panel already (409): said at the field, like a 422."""
    return [{"field": "kvk_number", "code": "taken", "message": "taken", "anchor": "f-kvk_number"}]


def with_header(request: Request, name: str, value: str) -> Request:
    """The same request with one more header, for a route that reads it (Idempotency-Key)."""
    environ = dict(request.environ)
    environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
    return Request(environ)


def when(value: str | None, lang: str) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_date(moment.astimezone(UTC).date(), format="long", locale=lang)


# --- before joining ---------------------------------------------------------------------------


@resident_page("GET", "/", summary="The app's start: join with the letter code")
def start(ctx: PageContext) -> Response:
    found = app_context(ctx)
    if ctx.signed_in:
        return ctx.redirect(found["base"] + "peilingen")
    return show(
        ctx,
        "resident/start.html",
        found,
        expired="verlopen" in ctx.request.args,
        signed_out="afgemeld" in ctx.request.args,
    )


@resident_page("GET,POST", "/aanmelden", summary="Join: letter code, buurt, about you, consent")
def join(ctx: PageContext) -> Response:
    found = app_context(ctx)
    if ctx.signed_in:
        return ctx.redirect(found["base"] + "peilingen")
    form = ctx.form
    values = {
        "invitation_code": form.get("invitation_code", "").strip().upper(),
        "buurt_code": form.get("buurt_code", ""),
        "birth_year": form.get("birth_year", ""),
        "sex": form.get("sex", ""),
        "consent": form.get("consent") == "ja",
        "kind": form.get("kind", ""),
        "kvk_number": form.get("kvk_number", "").strip(),
        "organisation_name": form.get("organisation_name", "").strip(),
    }
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST" and form.get("step") == "join":
        body = {**profile_body(ctx), "invitation_code": values["invitation_code"]}
        try:
            session = ctx.api("join", body=body).body
        except InvalidInput as exc:
            errors = field_errors(exc)
        except Conflict:
            errors = kvk_taken()
        else:
            start_session(ctx, RESIDENT, session)
            return ctx.redirect(found["base"] + "welkom")
    elif ctx.request.method == "POST" and not values["invitation_code"]:
        errors = [
            {
                "field": "invitation_code",
                "code": "required",
                "message": "required",
                "anchor": "f-invitation_code",
            }
        ]
        return show(ctx, "resident/start.html", found, errors=errors, values=values, status=422)
    return show(
        ctx,
        "resident/join.html",
        found,
        values=values,
        errors=errors,
        wijken=areas(ctx, found["code"]),
        years=birth_years(),
        status=422 if errors else 200,
    )


@resident_page("GET,POST", "/aanmelden-email", summary="Join by e-mail (self-selected)")
def signup(ctx: PageContext) -> Response:
    found = app_context(ctx)
    if ctx.signed_in:
        return ctx.redirect(found["base"] + "peilingen")
    form = ctx.form
    values = {
        "email": form.get("email", "").strip(),
        "code": form.get("code", "").strip(),
        "buurt_code": form.get("buurt_code", ""),
        "birth_year": form.get("birth_year", ""),
        "sex": form.get("sex", ""),
        "consent": form.get("consent") == "ja",
        "kind": form.get("kind", ""),
        "kvk_number": form.get("kvk_number", "").strip(),
        "organisation_name": form.get("organisation_name", "").strip(),
    }
    step, errors = "email", []
    if ctx.request.method == "POST":
        if form.get("step") == "email":
            try:
                ctx.api(
                    "signup",
                    body={
                        "municipality_code": found["code"],
                        "email": values["email"],
                        "language": ctx.lang,
                    },
                )
                step = "verify"
            except InvalidInput as exc:
                errors = field_errors(exc)
        elif form.get("step") == "verify":
            step = "verify"
            body = {
                **profile_body(ctx),
                "municipality_code": found["code"],
                "email": values["email"],
                "code": values["code"],
            }
            try:
                session = ctx.api("signup_verify", body=body).body
            except InvalidInput as exc:
                errors = field_errors(exc)
            except Conflict as exc:
                if not any(e.get("field") == "kvk_number" for e in exc.errors or []):
                    raise
                errors = kvk_taken()
            else:
                start_session(ctx, RESIDENT, session)
                return ctx.redirect(found["base"] + "welkom")
    return show(
        ctx,
        "resident/signup.html",
        found,
        step=step,
        values=values,
        errors=errors,
        wijken=areas(ctx, found["code"]) if step == "verify" else [],
        years=birth_years(),
        status=422 if errors else 200,
    )


def birth_years() -> list[int]:
    this_year = datetime.now(UTC).year
    return list(range(this_year - 15, this_year - 111, -1))


@resident_page("GET", "/buurt-zoeken", summary="The buurt of a location, to confirm (htmx)")
def locate(ctx: PageContext) -> Response:
    found = app_context(ctx)
    try:
        lat, lon = float(ctx.request.args["lat"]), float(ctx.request.args["lon"])
    except (KeyError, ValueError):
        raise InvalidInput(
            "send lat and lon", [{"field": "lat", "code": "required", "message": "a number"}]
        ) from None
    try:
        suggestion = ctx.api(
            "locate", params={"municipality_code": found["code"]}, query={"lat": lat, "lon": lon}
        ).body
    except RouteNotFound:
        suggestion = None
    return ctx.render("resident/_buurt_suggestion.html", suggestion=suggestion)


@resident_page("GET", "/buurten.geojson", summary="The buurt polygons for the map picker")
def buurten(ctx: PageContext) -> Response:
    found = app_context(ctx)
    reply = ctx.api("public_buurt_boundaries", params={"municipality_code": found["code"]})
    response = Response(
        json.dumps(reply.body, separators=(",", ":")), content_type="application/geo+json"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# --- the installable app ----------------------------------------------------------------------


@resident_page("GET", "/manifest.webmanifest", summary="The web app manifest of this municipality")
def app_manifest(ctx: PageContext) -> Response:
    found = app_context(ctx)
    body = manifest(found["code"], found, found["name"], found["base"] + "icon.svg", ctx.lang)
    asset = make_asset("manifest.webmanifest", body.encode(), "application/manifest+json")
    return send_asset(ctx.request, asset, cache_control="public, max-age=300")


@resident_page("GET", "/icon.svg", summary="The app icon in the municipality's colour")
def app_icon(ctx: PageContext) -> Response:
    found = app_context(ctx)
    asset = make_asset("icon.svg", icon_svg(found, found["name"]).encode(), "image/svg+xml")
    return send_asset(ctx.request, asset, cache_control="public, max-age=300")


@resident_page("GET", "/sw.js", summary="The service worker (scope: this municipality's app)")
def service_worker(ctx: PageContext) -> Response:
    app_context(ctx)
    asset = ctx.web.static.assets["js/sw.js"]
    # A service worker is looked up by URL; the browser checks it for updates itself.
    return send_asset(ctx.request, asset, cache_control="no-cache")


# --- signed in --------------------------------------------------------------------------------


@resident_page("GET", "/welkom", personal=True, summary="Joined: your buurt, notifications")
def welcome(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    me = ctx.api("me").body
    return show(
        ctx,
        "resident/welcome.html",
        found,
        me=me,
        buurt=area_name(ctx, found, me["buurt_code"]),
        vapid_key=ctx.api("vapid_public_key").body["application_server_key"],
    )


def area_name(ctx: PageContext, found: dict[str, Any], code: str | None) -> str:
    for wijk in areas(ctx, found["code"]):
        for buurt in wijk["buurten"]:
            if buurt["code"] == code:
                return f"{buurt['name']} ({wijk['name']})"
    return code or ""


@resident_page("GET", "/peilingen", personal=True, summary="Open polls for my buurt")
def polls(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    open_polls = ctx.api("my_polls").body
    for poll in open_polls:
        poll["closes_on"] = when(poll.get("closes_at"), ctx.lang)
    return show(ctx, "resident/polls.html", found, polls=open_polls)


@resident_page(
    "GET,POST",
    "/peilingen/<poll_id>",
    personal=True,
    resource="poll",
    summary="Answer a poll; a draft is kept on the device until it is sent",
)
def poll(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll_id = ctx.params["poll_id"]
    shown = ctx.api("poll_detail", params={"poll_id": poll_id}).body
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
            receipt_id = reply.body["receipt_id"]
            return ctx.redirect(found["base"] + f"ontvangst/{receipt_id}?poll={poll_id}")
    return show(ctx, "resident/poll.html", found, **poll_form(ctx, shown, errors, key))


def poll_form(
    ctx: PageContext, shown: dict[str, Any], errors: list[dict[str, str]], key: str
) -> dict[str, Any]:
    """What a poll's form page shows (the app's page and the e-mail link's): the questions,
    what was filled in, the errors at their fields, and the form's Idempotency-Key."""
    definition = shown["definition"]
    return {
        "poll": shown,
        "definition": definition,
        "questions": pollform.questions_view(definition, ctx.lang),
        "field_name": pollform.field_name,
        "dont_know_label": pollform.dont_know_label,
        "form": ctx.form,
        "errors": errors,
        "idempotency_key": key,
        "closes_on": when(shown.get("closes_at"), ctx.lang),
        "tile_url": ctx.web.tile_url,
        "tile_attribution": ctx.web.tile_attribution,
        "status": 422 if errors else 200,
    }


def invoke_submit(ctx: PageContext, poll_id: str, answers: dict[str, Any], key: str) -> Any:
    """The submission route as the app's JSON client calls it, with the form's
    Idempotency-Key (a page sent twice is one submission)."""
    original = ctx.request
    ctx.request = with_header(original, "Idempotency-Key", key)
    try:
        return ctx.api("submit", params={"poll_id": poll_id}, body={"answers": answers})
    finally:
        ctx.request = original


@resident_page("GET", "/ontvangst/<receipt_id>", personal=True, summary="What became of my answers")
def receipt(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    state = ctx.api("receipt", params={"receipt_id": ctx.params["receipt_id"]}).body
    fragment = ctx.request.headers.get("HX-Request") == "true"
    return show(
        ctx,
        "resident/_receipt.html" if fragment else "resident/receipt.html",
        found,
        receipt=state,
        draft_poll=state.get("poll_id") or ctx.request.args.get("poll", ""),
    )


@resident_page(
    "GET,POST", "/meldingen", personal=True, summary="Notifications: devices and quiet hours"
)
def notifications(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors, saved = [], None
    status = 200
    if ctx.request.method == "POST":
        if ctx.form.get("remove_device"):
            try:
                ctx.api("remove_device", params={"device_id": ctx.form["remove_device"]})
                saved = "removed"
            except NotPermitted as exc:  # a colleague's device (a business's other contact)
                errors = [{**e, "anchor": "devices"} for e in exc.errors]
                status = 403
        else:
            body: dict[str, Any] = {}
            if ctx.form.get("quiet") == "ja":
                body["quiet_hours"] = {
                    "start": ctx.form.get("quiet_start", ""),
                    "end": ctx.form.get("quiet_end", ""),
                }
            else:
                body["quiet_hours"] = None
            order = [c for c in ("webpush", "email") if ctx.form.get(f"channel_{c}") == "ja"]
            if order:
                body["channel_order"] = order
            try:
                saved = ctx.api("notification_preferences", body=body).body
            except InvalidInput as exc:
                errors = field_errors(exc)
    devices = ctx.api("list_devices").body
    return show(
        ctx,
        "resident/notifications.html",
        found,
        devices=devices,
        colleagues=colleagues_of(ctx, devices),
        vapid_key=ctx.api("vapid_public_key").body["application_server_key"],
        saved=saved,
        errors=errors,
        form=ctx.form,
        status=status if status != 200 else 422 if errors else 200,
    )


def colleagues_of(ctx: PageContext, devices: list[dict[str, Any]]) -> dict[str, str | None]:
    """contact id → e-mail address of the colleagues whose devices are listed (a business's or
    organisation's other contacts), to say whose each device is; asked only when there is one."""
    if not any(d.get("registered_by") == "colleague" for d in devices):
        return {}
    return {c["contact_id"]: c.get("email") for c in ctx.api("contacts").body}


@resident_page("POST", "/apparaten", personal=True, summary="Register this browser for Web Push")
def register_device(ctx: PageContext) -> Response:
    signed_in(ctx)
    body = {
        "channel": "webpush",
        "endpoint": ctx.form.get("endpoint", ""),
        "keys": {"p256dh": ctx.form.get("p256dh", ""), "auth": ctx.form.get("auth", "")},
    }
    device = ctx.api("register_device", body=body).body
    return Response(
        json.dumps({"device_id": device.get("device_id")}),
        status=201,
        content_type="application/json",
    )


@resident_page("GET", "/terugkoppeling", personal=True, summary="Feedback of my municipality")
def feedback_list(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    items = ctx.api("my_feedback").body
    for item in items:
        item["published_on"] = when(item.get("published_at"), ctx.lang)
    return show(ctx, "resident/feedback_list.html", found, items=items)


@resident_page(
    "GET,POST",
    "/terugkoppeling/<feedback_id>",
    personal=True,
    resource="feedback",
    summary="One feedback with its measures; react to it",
)
def feedback_detail(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    params = {"feedback_id": ctx.params["feedback_id"]}
    errors, reacted = [], False
    if ctx.request.method == "POST":
        useful = ctx.form.get("useful")
        body = {
            "useful": True if useful == "ja" else False if useful == "nee" else useful,
            "comment": ctx.form.get("comment", "").strip() or None,
        }
        try:
            ctx.api("react_to_feedback", params=params, body=body)
            reacted = True
        except InvalidInput as exc:
            errors = field_errors(exc)
    item = ctx.api("feedback_detail", params=params).body
    item["published_on"] = when(item.get("published_at"), ctx.lang)
    return show(
        ctx,
        "resident/feedback_detail.html",
        found,
        item=item,
        errors=errors,
        reacted=reacted,
        status=422 if errors else 200,
    )


@resident_page("GET", "/tijdlijn", summary="What the municipality did with what residents said")
def timeline(ctx: PageContext) -> Response:
    found = app_context(ctx)
    data = ctx.api("public_timeline", params={"municipality_code": found["code"]}).body
    for item in data["items"]:
        item["published_on"] = when(item.get("published_at"), ctx.lang)
    return show(ctx, "resident/timeline.html", found, timeline=data)


@resident_page("GET,POST", "/profiel", personal=True, summary="My details; move to another buurt")
def profile(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors, saved = [], False
    if ctx.request.method == "POST":
        body: dict[str, Any] = {"language": ctx.form.get("language", ctx.lang)}
        if ctx.form.get("buurt_code"):
            body["buurt_code"] = ctx.form["buurt_code"]
        try:
            ctx.api("update_me", body=body)
            saved = True
            refresh_now(ctx)  # the token names the buurt: a new one for the new buurt
        except InvalidInput as exc:
            errors = field_errors(exc)
    me = ctx.api("me").body
    return show(
        ctx,
        "resident/profile.html",
        found,
        me=me,
        wijken=areas(ctx, found["code"]),
        saved=saved,
        errors=errors,
        status=422 if errors else 200,
    )


def refresh_now(ctx: PageContext) -> None:
    refresh = ctx.request.cookies.get(RESIDENT.refresh_cookie)
    if refresh:
        tokens = ctx.web.successors.exchange(
            refresh, lambda: ctx.api("token_refresh", body={"refresh_token": refresh}).body
        )
        start_session(ctx, RESIDENT, tokens)


@resident_page("GET,POST", "/uitschrijven", personal=True, summary="Leave the panel: erase my data")
def leave(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors: list[dict[str, Any]] = []
    me = ctx.api("me").body
    # A contact of a business or organisation with colleagues leaves alone: the page says so.
    others = (
        [c for c in ctx.api("contacts").body if not c.get("me")]
        if me.get("kind", "resident") != "resident"
        else []
    )
    if ctx.request.method == "POST":
        if ctx.form.get("confirm") == "ja":
            try:
                ctx.api("leave")
            except Conflict as exc:  # a session that does not say which contact it is
                errors = [{**e, "anchor": "f-confirm"} for e in exc.errors]
                return show(
                    ctx, "resident/leave.html", found, errors=errors, others=others, status=409
                )
            forget_session(ctx)
            ctx.kind = RESIDENT
            return ctx.redirect(found["base"] + ("tot-ziens?contact=1" if others else "tot-ziens"))
        errors = [
            {
                "field": "confirm",
                "code": "required",
                "message": "confirm",
                "anchor": "f-confirm",
            }
        ]
    return show(
        ctx,
        "resident/leave.html",
        found,
        errors=errors,
        others=others,
        status=422 if errors else 200,
    )


@resident_page("GET", "/tot-ziens", summary="After leaving: what was erased")
def goodbye(ctx: PageContext) -> Response:
    found = app_context(ctx)
    return show(ctx, "resident/goodbye.html", found, contact=ctx.request.args.get("contact") == "1")


@resident_page("POST", "/afmelden", summary="Sign out on this device (stay in the panel)")
def sign_out(ctx: PageContext) -> Response:
    found = app_context(ctx)
    ctx.kind = RESIDENT
    forget_session(ctx)
    return ctx.redirect(found["base"] + "?afgemeld=1")
