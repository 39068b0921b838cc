"""Routes for municipal staff: ``/admin/v1/…``. The municipality always comes from the verified
token; an id in the path of another municipality's object answers 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway import schemas as out
from gateway.errors import PreconditionFailed
from gateway.routing import JSONText, Reply, RequestContext, route
from services.common.errors import Conflict
from services.notify import schemas as notify
from services.panel import schemas as panel
from services.polls import schemas as polls
from services.responses import exports

STAFF, POLLS, PLATFORM = "staff", "polls", "platform"


# --- session ---------------------------------------------------------------------------------


@route(
    "POST",
    "/admin/v1/login",
    tag=STAFF,
    body=panel.LoginIn,
    response=out.StaffSessionOut,
    limits=("login", "login_ip"),
    summary="Sign in with e-mail address and password",
)
def login(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "staff_login", ctx.body)


@route(
    "POST",
    "/admin/v1/accept-invite",
    tag=STAFF,
    body=panel.AcceptInviteIn,
    response=out.StaffSessionOut,
    limits=("verify",),
    summary="Choose a password for an invited account",
)
def accept_invite(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "accept_staff_invite", ctx.body)


# --- platform --------------------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/municipalities",
    tag=PLATFORM,
    auth="staff",
    role="platform_admin",
    summary="All municipalities (platform administrator)",
)
def municipalities(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "list_municipalities")


@route(
    "POST",
    "/admin/v1/municipalities",
    tag=PLATFORM,
    auth="staff",
    role="platform_admin",
    body=panel.MunicipalityIn,
    success=201,
    summary="Add a municipality (platform administrator)",
)
def create_municipality(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "create_municipality", ctx.body), status=201)


@route(
    "POST",
    "/admin/v1/municipalities/<municipality_code>/staff",
    tag=PLATFORM,
    auth="staff",
    role="platform_admin",
    body=panel.InviteStaffIn,
    response=out.StaffOut,
    success=201,
    resource="municipality",
    tenant_scoped=False,
    summary="Invite a municipality's first staff member (platform administrator)",
)
def invite_first_staff(ctx: RequestContext) -> Reply:
    return Reply(
        ctx.rpc("panel", "invite_staff", ctx.params["municipality_code"], ctx.body), status=201
    )


# --- the municipality ------------------------------------------------------------------------


@route(
    "GET", "/admin/v1/branding", tag=STAFF, auth="staff", role="viewer", summary="Our house style"
)
def get_branding(ctx: RequestContext) -> Any:
    found = ctx.rpc("panel", "get_branding", ctx.municipality)
    found.pop("etag", None)
    return found


@route(
    "PATCH",
    "/admin/v1/branding",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.BrandingIn,
    summary="Change our house style (colours must stay legible)",
)
def update_branding(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "update_branding", ctx.municipality, ctx.body)["branding"]


@route(
    "GET",
    "/admin/v1/settings",
    tag=STAFF,
    auth="staff",
    role="viewer",
    summary="Our settings (minimum cell size, channels, quiet hours, limits)",
)
def get_settings(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "get_settings", ctx.municipality)


@route(
    "PATCH",
    "/admin/v1/settings",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.SettingsIn,
    summary="Change our settings",
)
def update_settings(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "update_settings", ctx.municipality, ctx.body)


@route(
    "POST",
    "/admin/v1/areas/import",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.AreaImportIn,
    summary="Import CBS wijken and buurten (KWB CSV + GeoJSON)",
)
def import_areas(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "import_areas", ctx.municipality, ctx.body)


@route(
    "GET",
    "/admin/v1/areas",
    tag=STAFF,
    auth="staff",
    role="viewer",
    query=out.AreaQuery,
    response=out.AreaOut,
    many=True,
    summary="Our wijken and buurten with CBS margins",
)
def list_areas(ctx: RequestContext) -> Any:
    return ctx.rpc(
        "panel", "list_areas", ctx.municipality, ctx.query.get("level"), ctx.query.get("year")
    )


@route(
    "POST",
    "/admin/v1/invitation-batches",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.InvitationBatchIn,
    success=201,
    summary="Generate invitation codes for recruitment letters (the CSV is shown once)",
)
def create_invitation_batch(ctx: RequestContext) -> Reply:
    batch = ctx.rpc(
        "panel",
        "create_invitation_batch",
        ctx.municipality,
        ctx.body,
        ctx.principal.claims.get("email"),
    )
    if "text/csv" in ctx.request.headers.get("Accept", ""):
        return Reply(
            batch["csv"],
            status=201,
            content_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="codes-{batch["batch_id"]}.csv"'
            },
        )
    return Reply(batch, status=201)


@route(
    "GET",
    "/admin/v1/invitation-batches",
    tag=STAFF,
    auth="staff",
    role="viewer",
    summary="Invitation batches with how many codes were used",
)
def list_invitation_batches(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "list_invitation_batches", ctx.municipality)


@route(
    "GET",
    "/admin/v1/panel/composition",
    tag=STAFF,
    auth="staff",
    role="viewer",
    summary="Members per wijk, age band and sex against CBS, with gaps and attrition",
)
def composition(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "panel_composition", ctx.municipality)


@route(
    "GET",
    "/admin/v1/staff",
    tag=STAFF,
    auth="staff",
    role="admin",
    response=out.StaffOut,
    many=True,
    summary="Our staff accounts",
)
def list_staff(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "list_staff", ctx.municipality)


@route(
    "POST",
    "/admin/v1/staff",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.InviteStaffIn,
    response=out.StaffOut,
    success=201,
    summary="Invite a colleague (an e-mail with a link to choose a password)",
)
def invite_staff(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "invite_staff", ctx.municipality, ctx.body), status=201)


@route(
    "PATCH",
    "/admin/v1/staff/<staff_id>",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.StaffChangeIn,
    response=out.StaffOut,
    resource="staff",
    summary="Change a colleague's role, or disable the account",
)
def change_staff(ctx: RequestContext) -> Any:
    return ctx.rpc(
        "panel",
        "change_staff",
        ctx.municipality,
        ctx.params["staff_id"],
        ctx.body,
        ctx.principal.subject,
    )


# --- templates and polls ---------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/templates",
    tag=POLLS,
    auth="staff",
    role="viewer",
    query=out.TemplateQuery,
    response=out.TemplateOut,
    many=True,
    summary="The template library, optionally by theme",
)
def list_templates(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "list_templates", ctx.query.get("theme"))


@route(
    "GET",
    "/admin/v1/templates/<template_id>",
    tag=POLLS,
    auth="staff",
    role="viewer",
    response=out.TemplateOut,
    resource="template",
    tenant_scoped=False,
    summary="One template with its questions",
)
def get_template(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "get_template", ctx.params["template_id"])


@route(
    "GET",
    "/admin/v1/polls",
    tag=POLLS,
    auth="staff",
    role="viewer",
    query=out.PollListQuery,
    response=out.PollOut,
    many=True,
    summary="Our polls, optionally by status",
)
def list_polls(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "list_polls", ctx.municipality, ctx.query.get("status"))


@route(
    "POST",
    "/admin/v1/polls",
    tag=POLLS,
    auth="staff",
    role="editor",
    body=polls.PollCreate,
    response=out.PollOut,
    success=201,
    summary="Create a draft from a template or a full definition",
)
def create_poll(ctx: RequestContext) -> Reply:
    poll = ctx.rpc(
        "polls", "create_poll", ctx.municipality, ctx.body, ctx.principal.claims.get("email")
    )
    return Reply(poll, status=201, headers={"ETag": f'"{poll["version"]}"'})


@route(
    "GET",
    "/admin/v1/polls/<poll_id>",
    tag=POLLS,
    auth="staff",
    role="viewer",
    response=out.PollOut,
    resource="poll",
    summary="One poll",
)
def get_poll(ctx: RequestContext) -> Reply:
    poll = ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"])
    return Reply(poll, headers={"ETag": f'"{poll["version"]}"'})


@route(
    "PATCH",
    "/admin/v1/polls/<poll_id>",
    tag=POLLS,
    auth="staff",
    role="editor",
    body=polls.PollUpdate,
    response=out.PollOut,
    resource="poll",
    summary="Edit a draft; send If-Match with the ETag you read to avoid lost updates",
    description="412 when If-Match is not a version; 409 when the poll changed meanwhile "
    "or is no longer a draft.",
)
def update_poll(ctx: RequestContext) -> Reply:
    expected = if_match_version(ctx.request.headers.get("If-Match"))
    poll = ctx.rpc(
        "polls", "update_poll", ctx.municipality, ctx.params["poll_id"], ctx.body, expected
    )
    return Reply(poll, headers={"ETag": f'"{poll["version"]}"'})


def if_match_version(header: str | None) -> int | None:
    if not header:
        return None
    try:
        return int(header.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise PreconditionFailed('If-Match must be the ETag of the poll, e.g. "3"') from None


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/publish",
    tag=POLLS,
    auth="staff",
    role="editor",
    response=out.PollOut,
    resource="poll",
    summary="Publish: open now, or at opens_at (idempotent)",
)
def publish_poll(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "publish_poll", ctx.municipality, ctx.params["poll_id"])


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/close",
    tag=POLLS,
    auth="staff",
    role="editor",
    response=out.PollOut,
    resource="poll",
    summary="Close now (idempotent)",
)
def close_poll(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "close_poll", ctx.municipality, ctx.params["poll_id"])


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/archive",
    tag=POLLS,
    auth="staff",
    role="editor",
    response=out.PollOut,
    resource="poll",
    summary="Archive a closed poll",
)
def archive_poll(ctx: RequestContext) -> Any:
    return ctx.rpc("polls", "archive_poll", ctx.municipality, ctx.params["poll_id"])


# --- notifications ---------------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/deliveries",
    tag=POLLS,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="Invited, and notifications per kind, channel and status",
)
def delivery_summary(ctx: RequestContext) -> Any:
    # polls decides whether the poll is ours (404 otherwise); notify knows only published ones.
    ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"])
    return ctx.rpc("notify", "delivery_summary", ctx.municipality, ctx.params["poll_id"])


@route(
    "GET",
    "/admin/v1/deliveries/dead",
    tag=STAFF,
    auth="staff",
    role="admin",
    summary="Notifications given up after their last attempt",
)
def dead_deliveries(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "list_dead_deliveries", ctx.municipality)


@route(
    "POST",
    "/admin/v1/deliveries/dead/replay",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=notify.ReplayIn,
    summary="Try dead notifications again (all, or the ids given)",
)
def replay_dead_deliveries(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "replay_dead_deliveries", ctx.municipality, ctx.body)


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results",
    tag=POLLS,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="Results per question for the gemeente, each wijk and buurt: counts, weighted "
    "percentages with 95% intervals, response rates; small cells suppressed",
)
def poll_results(ctx: RequestContext) -> Any:
    # As JSON text: responses caches the encoded document; it is passed on, not re-encoded.
    _, k = _opened(ctx)
    return JSONText(
        ctx.rpc("responses", "results_json", ctx.municipality, ctx.params["poll_id"], k)
    )


def _opened(ctx: RequestContext) -> tuple[dict[str, Any], int]:
    """The poll, if it has opened, and the municipality's minimum cell size."""
    poll = ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"])
    if poll["status"] in ("draft", "scheduled"):
        raise Conflict("this poll has not opened yet: there are no results")
    return poll, ctx.rpc("panel", "get_settings", ctx.municipality)["min_cell_size"]


def _results(ctx: RequestContext) -> tuple[dict[str, Any], dict[str, Any]]:
    poll, k = _opened(ctx)
    return poll, ctx.rpc("responses", "results", ctx.municipality, ctx.params["poll_id"], k)


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _export(ctx: RequestContext, fmt: str) -> Reply:
    """The results page as a table (services/responses/exports.py): the same suppressed
    figures, nothing more."""
    poll, found = _results(ctx)
    municipality = ctx.rpc("panel", "get_branding", ctx.municipality)["name"]
    generated = datetime.now(UTC)
    table = exports.rows(found, poll["definition"])
    meta = exports.metadata(
        found, poll["definition"], municipality=municipality, generated_at=generated
    )
    body = exports.to_csv(table, meta) if fmt == "csv" else exports.to_xlsx(table, meta)
    filename = f"buurtpeil-resultaten-{found['poll_id']}-{generated:%Y-%m-%d}.{fmt}"
    return Reply(
        body,
        content_type=EXPORT_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results.csv",
    tag=POLLS,
    auth="staff",
    role="viewer",
    resource="poll",
    media_type="text/csv",
    summary="The results as CSV for Dutch Excel (UTF-8 with BOM, ';', decimal comma), one row "
    "per question, area and option; suppressed cells empty and marked",
)
def poll_results_csv(ctx: RequestContext) -> Reply:
    return _export(ctx, "csv")


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results.xlsx",
    tag=POLLS,
    auth="staff",
    role="viewer",
    resource="poll",
    media_type=EXPORT_TYPES["xlsx"],
    summary="The results as XLSX: the same table with typed numbers, and a sheet about the "
    "figures; suppressed cells empty and marked",
)
def poll_results_xlsx(ctx: RequestContext) -> Reply:
    return _export(ctx, "xlsx")
