"""The staff dashboard's administrative pages under ``/staff/beheer…``: staff accounts and
roles, the house style with a live preview and the contrast check, invitation batches (the CSV
of letter codes downloaded once), and dead deliveries with replay.

Like every staff page (web/staff.py) each page gets its data through ``ctx.api`` — the JSON
routes' own roles, tenancy and validation. These routes are the admin's: a page names
``role="admin"`` so a lesser role's POST is refused (403 page) before the form is read, and a
GET is refused by the route itself.

The letter codes exist once, in the answer of the batch route (panel keeps only their hashes).
The page keeps that CSV — encrypted under the web secret — in Redis for ``CODES_TTL`` seconds
under the batch id, and hands it out once (``GETDEL``): a second download is a page that says
the codes were downloaded already and how to get new ones. Without Redis, the form's answer is
the CSV itself (downloaded once, as well).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from werkzeug.wrappers import Response

from gateway.auth import STAFF_ROLES
from gateway.errors import RouteNotFound, ServiceUnavailable
from services.common.errors import Conflict, InvalidInput
from web import theme
from web.messages import N_
from web.pages import PageContext
from web.resident import field_errors, when
from web.staff import may, show, signed_in, staff_page

CODES_TTL = 15 * 60  # seconds the encrypted CSV waits for its one download
ROLES = STAFF_ROLES  # viewer, editor, admin, invoerder (data entry only)
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
ADMIN_LINKS = {
    "admin": "/staff/beheer",
    "accounts": "/staff/beheer/medewerkers",
    "branding": "/staff/beheer/huisstijl",
    "preview": "/staff/beheer/huisstijl/voorbeeld",
    "preview_css": "/staff/beheer/huisstijl/voorbeeld.css",
    "batches": "/staff/beheer/uitnodigingen",
    "dead": "/staff/beheer/meldingen",
    "regions": "/staff/beheer/regios",
}


def admin_show(ctx: PageContext, template: str, found: dict[str, Any], **values: Any) -> Response:
    return show(
        ctx,
        template,
        found,
        admin_links=ADMIN_LINKS,
        can_admin=may(ctx, "admin"),
        ratio=lambda value: ratio_text(value, ctx.lang),
        **values,
    )


def role_names(ctx: PageContext) -> dict[str, str]:
    return {
        "viewer": ctx._("Viewer"),
        "editor": ctx._("Editor"),
        "admin": ctx._("Administrator"),
        "invoerder": ctx._("Data entry"),
    }


def status_names(ctx: PageContext) -> dict[str, str]:
    return {"invited": ctx._("Invited"), "active": ctx._("Active"), "disabled": ctx._("Disabled")}


# What to fix, per field of these forms (the service names the field and a code in English).
FIELD_TEXTS = {
    "email": N_("Enter an e-mail address like name@example.nl."),
    "role": N_("Choose a role."),
    "name": N_("A name can be at most 200 characters."),
    "app_name": N_("Enter the app's name (2 to 60 characters)."),
    "primary_color": N_("Enter a colour as # and six hexadecimal digits, like #1F4E79."),
    "accent_color": N_("Enter a colour as # and six hexadecimal digits, like #F2A900."),
    "text_on_primary": N_("Enter a colour as # and six hexadecimal digits, or choose automatic."),
    "logo_url": N_("Enter the logo's address starting with https://, or leave it empty."),
    "welcome_text": N_("The welcome text can be at most 1000 characters."),
}


def with_anchor(
    ctx: PageContext, errors: list[dict[str, str]], prefix: str = "f-"
) -> list[dict[str, str]]:
    out = []
    for e in errors:
        name = e["field"].split(".")[-1].split("[")[0] or "form"
        text = FIELD_TEXTS.get(name)
        out.append({**e, "anchor": prefix + name, **({"text": ctx._(text)} if text else {})})
    return out


@staff_page("GET", "/beheer", summary="Staff: administration (accounts, house style, codes, ...)")
def staff_admin_home(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    return admin_show(ctx, "staff/admin_home.html", found)


# --- staff accounts and roles -------------------------------------------------------------------


@staff_page(
    "GET,POST",
    "/beheer/medewerkers",
    role="admin",
    summary="Staff: our staff accounts and their roles; invite a colleague",
)
def staff_admin_accounts(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST":
        body = {
            "email": ctx.form.get("email", "").strip(),
            "role": ctx.form.get("role", ""),
            "name": ctx.form.get("name", "").strip() or None,
        }
        try:
            made = ctx.api("invite_staff", body=body).body
        except InvalidInput as exc:
            errors = with_anchor(ctx, field_errors(exc))
        except Conflict:
            errors = [
                {
                    "field": "email",
                    "code": "exists",
                    "anchor": "f-email",
                    "text": ctx._("There is an account with this e-mail address already."),
                }
            ]
        else:
            return ctx.redirect(f"{ADMIN_LINKS['accounts']}?uitgenodigd={made['id']}")
    accounts = ctx.api("list_staff").body
    invited = ctx.request.args.get("uitgenodigd", "")
    return admin_show(
        ctx,
        "staff/admin_accounts.html",
        found,
        accounts=[
            {**a, "last_seen": when(a.get("last_login_at"), ctx.lang)}
            for a in sorted(accounts, key=lambda a: (a["status"] == "disabled", a["email"]))
        ],
        invited=next((a for a in accounts if a["id"] == invited), None),
        roles=ROLES,
        role_names=role_names(ctx),
        account_statuses=status_names(ctx),
        values=ctx.form if errors else {},
        errors=errors,
        status=422 if errors else 200,
    )


def our_account(ctx: PageContext) -> dict[str, Any]:
    """The account in the path, if it is one of ours (else a 404 page, like the route's)."""
    wanted = ctx.params["staff_id"]
    account = next((a for a in ctx.api("list_staff").body if a["id"] == wanted), None)
    if account is None:
        raise RouteNotFound("no such staff account")
    return account


@staff_page(
    "GET,POST",
    "/beheer/medewerkers/<staff_id>",
    resource="staff",
    role="admin",
    summary="Staff: change a colleague's role, or disable (or enable) the account",
)
def staff_admin_account(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    account = our_account(ctx)
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST":
        action = ctx.form.get("action", "")
        change: dict[str, str] = {}
        if action == "role":
            change = {"role": ctx.form.get("role", "")}
        elif action in ("disable", "enable"):
            change = {"status": "disabled" if action == "disable" else "active"}
        try:
            if not change:
                raise InvalidInput(
                    "unknown action", [{"field": "action", "code": "invalid", "message": "?"}]
                )
            ctx.api("change_staff", params={"staff_id": account["id"]}, body=change)
        except InvalidInput as exc:
            errors = with_anchor(ctx, field_errors(exc))
        except Conflict as exc:
            own = "own" in str(exc)
            errors = [
                {
                    "field": "form",
                    "code": "conflict",
                    "anchor": "f-role",
                    "text": ctx._(
                        "You cannot change your own role or account; ask another administrator."
                    )
                    if own
                    else ctx._(
                        "An invited account becomes active when the invitation is accepted."
                    ),
                }
            ]
        else:
            return ctx.redirect(f"{ADMIN_LINKS['accounts']}/{account['id']}?klaar={action}")
    return admin_show(
        ctx,
        "staff/admin_account.html",
        found,
        account={**account, "last_seen": when(account.get("last_login_at"), ctx.lang)},
        roles=ROLES,
        role_names=role_names(ctx),
        account_statuses=status_names(ctx),
        myself=account["id"] == ctx.claims.get("sub"),
        done=ctx.request.args.get("klaar", ""),
        errors=errors,
        status=409 if any(e["code"] == "conflict" for e in errors) else 422 if errors else 200,
    )


# --- branding -----------------------------------------------------------------------------------

BRANDING_FIELDS = ("app_name", "primary_color", "text_on_primary", "accent_color", "logo_url")


def colours_of(values: dict[str, Any], current: dict[str, Any]) -> dict[str, str]:
    """The colours to preview: the form's where they are hex colours, else the current ones."""
    primary = str(values.get("primary_color") or "").strip()
    if not HEX.match(primary):
        primary = current["primary_color"]
    text = str(values.get("text_on_primary") or "").strip()
    if not HEX.match(text):
        text = ""
    return {"primary_color": primary.upper(), "text_on_primary": text.upper()}


def legible_text_on(primary: str) -> str:
    """Automatic: the more legible of white and black (what panel chooses when none is set)."""
    white, black = theme.contrast(primary, "#FFFFFF"), theme.contrast(primary, "#000000")
    return "#FFFFFF" if white >= black else "#000000"


def contrast_check(colours: dict[str, str]) -> dict[str, Any]:
    """The figures of the contrast check: the route refuses text on the primary colour below
    4.5:1 (WCAG AA, panel's rule); the primary colour on the white page is only a warning —
    links are then drawn in a darker shade of it (web/theme.py)."""
    primary = colours["primary_color"]
    text = colours["text_on_primary"] or legible_text_on(primary)
    on_primary = theme.contrast(primary, text)
    on_white = theme.contrast(primary, "#FFFFFF")
    link = theme.readable_on("#FFFFFF", primary)
    return {
        "primary": primary,
        "text": text,
        "automatic": not colours["text_on_primary"],
        "text_ratio": on_primary,
        "text_ok": on_primary >= theme.AA_TEXT,
        "white_ratio": on_white,
        "white_text_ok": on_white >= theme.AA_TEXT,
        "white_ui_ok": on_white >= 3.0,
        "link": link,
        "link_ratio": theme.contrast(link, "#FFFFFF"),
        "required": theme.AA_TEXT,
    }


def ratio_text(ratio: float, lang: str) -> str:
    text = f"{ratio:.2f}"
    return text.replace(".", ",") if lang == "nl" else text


def preview_query(colours: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in colours.items() if v})


def branding_body(ctx: PageContext) -> dict[str, Any]:
    form = ctx.form
    text = form.get("text_on_primary", "").strip()
    return {
        "app_name": form.get("app_name", "").strip(),
        "primary_color": form.get("primary_color", "").strip().upper(),
        "accent_color": form.get("accent_color", "").strip().upper(),
        "text_on_primary": text.upper() or None,
        "logo_url": form.get("logo_url", "").strip() or None,
        "welcome_text": form.get("welcome_text", "").strip(),
    }


@staff_page(
    "GET,POST",
    "/beheer/huisstijl",
    role="admin",
    summary="Staff: our house style (colours, name, logo) with a preview and the contrast check",
)
def staff_admin_branding(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    current = ctx.api("get_branding").body
    errors: list[dict[str, str]] = []
    values: dict[str, Any] = {
        **current,
        "text_on_primary": current.get("text_on_primary") or "",
    }
    if ctx.request.method == "POST":
        body = branding_body(ctx)
        values = {**body, "text_on_primary": body["text_on_primary"] or ""}
        if ctx.form.get("action") == "save":
            try:
                ctx.api("update_branding", body=body)
            except InvalidInput as exc:
                errors = with_anchor(ctx, field_errors(exc))
            else:
                ctx.web.branding.forget(found["code"])  # this process shows the new style now
                return ctx.redirect(ADMIN_LINKS["branding"] + "?klaar=opgeslagen")
    colours = colours_of(values, current)
    check = contrast_check(colours)
    for e in errors:
        if e.get("code") == "low_contrast":
            e["text"] = ctx._(
                "Text in this colour on the primary colour reaches %(ratio)s:1; at least "
                "4.5:1 is needed. Choose automatic, or another text colour.",
                ratio=ratio_text(check["text_ratio"], ctx.lang),
            )
    return admin_show(
        ctx,
        "staff/admin_branding.html",
        found,
        values=values,
        check=check,
        preview_css=ADMIN_LINKS["preview_css"] + "?" + preview_query(colours),
        done=ctx.request.args.get("klaar", ""),
        errors=errors,
        status=422 if errors else 200,
    )


@staff_page(
    "GET",
    "/beheer/huisstijl/voorbeeld",
    summary="Staff: the house style's preview and contrast check for the colours asked (the "
    "fragment htmx swaps in while the colours are typed)",
)
def staff_admin_branding_preview(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    colours = colours_of(ctx.request.args, found)
    return admin_show(
        ctx,
        "staff/_admin_preview.html",
        found,
        values={**found, **{k: v for k, v in ctx.request.args.items() if k in BRANDING_FIELDS}},
        check=contrast_check(colours),
        preview_css=ADMIN_LINKS["preview_css"] + "?" + preview_query(colours),
    )


@staff_page(
    "GET",
    "/beheer/huisstijl/voorbeeld.css",
    summary="Staff: the theme for the preview's colours (scoped to the preview)",
)
def staff_admin_branding_css(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    colours = colours_of(ctx.request.args, found)
    tokens = theme.basis_tokens(
        {
            "primary_color": colours["primary_color"],
            "text_on_primary": colours["text_on_primary"]
            or legible_text_on(colours["primary_color"]),
        }
    )
    css = ".bp-theme.bp-preview {\n" + "".join(f"  {k}: {v};\n" for k, v in tokens.items()) + "}\n"
    return Response(css, content_type="text/css; charset=utf-8")


# --- invitation batches -------------------------------------------------------------------------


def codes_key(ctx: PageContext, batch_id: str) -> str:
    return ctx.gateway.state.shared.key("web", "codes", batch_id)


def codes_cipher(ctx: PageContext) -> Fernet:
    secret = hashlib.sha256(b"invitation-codes:" + ctx.web.csrf.secret).digest()
    return Fernet(base64.urlsafe_b64encode(secret))


def keep_codes(ctx: PageContext, batch: dict[str, Any]) -> bool:
    """Keep the batch's CSV for its one download; False when Redis is not there."""
    shared = ctx.gateway.state.shared
    sealed = codes_cipher(ctx).encrypt(
        json.dumps({"mun": ctx.claims["mun"], "csv": batch["csv"]}).encode()
    )
    return shared.call(
        "web_codes",
        lambda: bool(shared.client.set(codes_key(ctx, batch["batch_id"]), sealed, ex=CODES_TTL)),
        lambda: False,
    )


def take_codes(ctx: PageContext, batch_id: str) -> str | None:
    """The batch's CSV, once: None when it was downloaded already (or waited too long)."""
    shared = ctx.gateway.state.shared
    missing = object()
    sealed = shared.call(
        "web_codes", lambda: shared.client.getdel(codes_key(ctx, batch_id)), lambda: missing
    )
    if sealed is missing:
        raise ServiceUnavailable("the codes cannot be read right now")
    if sealed is None:
        return None
    try:
        kept = json.loads(codes_cipher(ctx).decrypt(sealed))
    except InvalidToken:
        return None
    return kept["csv"] if kept.get("mun") == ctx.claims["mun"] else None


def codes_waiting(ctx: PageContext, batch_id: str) -> bool:
    shared = ctx.gateway.state.shared
    return shared.call(
        "web_codes", lambda: bool(shared.client.exists(codes_key(ctx, batch_id))), lambda: False
    )


def csv_download(csv_text: str, batch_id: str) -> Response:
    return Response(
        csv_text,
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="briefcodes-{batch_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


def wijk_names(ctx: PageContext) -> list[dict[str, Any]]:
    try:
        found = ctx.api("list_areas", query={"level": "wijk"}).body
    except Exception:  # noqa: BLE001 - no areas imported yet: only a total
        return []
    return sorted((a for a in found if a["level"] == "wijk"), key=lambda a: a["name"])


def batch_body(ctx: PageContext, wijken: list[dict[str, Any]]) -> dict[str, Any]:
    form = ctx.form
    if form.get("spread") == "per_wijk":
        per_wijk = {}
        for w in wijken:
            value = form.get(f"wijk-{w['code']}", "").strip()
            if value:
                per_wijk[w["code"]] = int(value) if value.isdigit() else -1
        return {"per_wijk": per_wijk}
    total = form.get("total", "").strip()
    return {"total": int(total) if total.isdigit() else -1} if total else {}


@staff_page(
    "GET,POST",
    "/beheer/uitnodigingen",
    role="admin",
    summary="Staff: invitation batches (letter codes) with how many were used; make a new one",
)
def staff_admin_batches(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    wijken = wijk_names(ctx)
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST":
        try:
            batch = ctx.api("create_invitation_batch", body=batch_body(ctx, wijken)).body
        except InvalidInput as exc:
            errors = [
                {
                    **e,
                    "anchor": "f-total",
                    "text": ctx._("Enter a number of codes from 1 to 100,000."),
                }
                for e in field_errors(exc)
            ][:1]
        else:
            if not keep_codes(ctx, batch):  # no Redis: this answer is the one download
                return csv_download(batch["csv"], batch["batch_id"])
            return ctx.redirect(f"{ADMIN_LINKS['batches']}/{batch['batch_id']}?nieuw=1")
    batches = ctx.api("list_invitation_batches").body
    return admin_show(
        ctx,
        "staff/admin_batches.html",
        found,
        batches=[{**b, "made_on": when(b["created_at"], ctx.lang)} for b in batches],
        wijken=wijken,
        values=ctx.form if errors else {},
        errors=errors,
        status=422 if errors else 200,
    )


@staff_page(
    "GET,POST",
    "/beheer/uitnodigingen/<batch_id>",
    resource="invitation_batch",
    role="admin",
    summary="Staff: one invitation batch; download its codes as CSV, once",
)
def staff_admin_batch(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    batch_id = ctx.params["batch_id"]
    batch = next(
        (b for b in ctx.api("list_invitation_batches").body if b["batch_id"] == batch_id), None
    )
    if batch is None:
        raise RouteNotFound("no such invitation batch")
    if ctx.request.method == "POST":
        csv_text = take_codes(ctx, batch_id)
        if csv_text is not None:
            return csv_download(csv_text, batch_id)
        return admin_show(
            ctx, "staff/admin_batch.html", found, batch=batch, gone=True, waiting=False, status=410
        )
    return admin_show(
        ctx,
        "staff/admin_batch.html",
        found,
        batch={**batch, "made_on": when(batch["created_at"], ctx.lang)},
        gone=False,
        waiting=codes_waiting(ctx, batch_id),
        new="nieuw" in ctx.request.args,
        minutes=CODES_TTL // 60,
    )


# --- dead deliveries ----------------------------------------------------------------------------


@staff_page(
    "GET,POST",
    "/beheer/meldingen",
    role="admin",
    summary="Staff: notifications given up after their last attempt; try them again",
)
def staff_admin_dead(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST":
        if ctx.form.get("action") == "all":
            body: dict[str, Any] = {}
        else:
            ids = [int(i) for i in ctx.form.getlist("delivery_ids") if i.isdigit()]
            body = {"delivery_ids": ids}
        if body.get("delivery_ids") == []:
            errors = [
                {
                    "field": "delivery_ids",
                    "code": "required",
                    "anchor": "f-delivery_ids",
                    "text": ctx._("Choose at least one notification, or try them all again."),
                }
            ]
        else:
            replayed = ctx.api("replay_dead_deliveries", body=body).body["replayed"]
            return ctx.redirect(f"{ADMIN_LINKS['dead']}?opnieuw={replayed}")
    dead = ctx.api("dead_deliveries").body
    titles = {p["id"]: p["title"] for p in ctx.api("list_polls").body}
    channel_names = {
        "webpush": ctx._("Web Push"),
        "fcm": ctx._("Android app"),
        "email": ctx._("E-mail"),
    }
    replayed = ctx.request.args.get("opnieuw", "")
    return admin_show(
        ctx,
        "staff/admin_dead.html",
        found,
        dead=[
            {
                **d,
                "poll_title": titles.get(d["poll_id"], d["poll_id"]),
                "channel_name": channel_names.get(d["channel"], d["channel"]),
                "when": when(d["updated_at"], ctx.lang),
            }
            for d in dead
        ],
        replayed=int(replayed) if replayed.isdigit() else None,
        errors=errors,
        status=422 if errors else 200,
    )
