"""Routes for municipal staff: ``/admin/v1/…``. The municipality always comes from the verified
token; an id in the path of another municipality's object answers 404."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from gateway import schemas as out
from gateway.errors import PreconditionFailed
from gateway.routing import JSONText, Reply, RequestContext, route
from gateway.schemas import answers, notify, panel, polls
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.suppression import Hierarchy, suppress_areas

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
    errors=(401,),  # wrong e-mail address or password, a locked account
)
def login(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "staff_login", ctx.body)


@route(
    "POST",
    "/admin/v1/token/refresh",
    tag=STAFF,
    body=panel.RefreshIn,
    response=out.StaffSessionOut,
    limits=("refresh",),
    summary="Exchange a staff refresh token for a new access and refresh token (rotation)",
    description="Staff access tokens live 15 minutes. A refresh token used twice ends its "
    "session (401); a disabled account or a changed role has no session left (401: sign in "
    "again).",
    errors=(401,),  # a refresh token not valid, or used twice
)
def staff_token_refresh(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "staff_refresh", ctx.body)


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
    many=True,
    response=answers.MunicipalityOut,
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
    response=answers.MunicipalityOut,
    errors=(409,),  # the code exists already
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
    errors=(409,),  # an account with this address exists
)
def invite_first_staff(ctx: RequestContext) -> Reply:
    return Reply(
        ctx.rpc("panel", "invite_staff", ctx.params["municipality_code"], ctx.body), status=201
    )


# --- the municipality ------------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/branding",
    tag=STAFF,
    auth="staff",
    role="viewer",
    summary="Our house style",
    response=answers.MunicipalityBrandingOut,
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
    response=answers.MunicipalityBrandingOut,
)
def update_branding(ctx: RequestContext) -> Any:
    # The changed resource as GET shows it, so a client need not read it again.
    changed = ctx.rpc("panel", "update_branding", ctx.municipality, ctx.body)
    return {"municipality_code": changed["code"], "name": changed["name"], **changed["branding"]}


@route(
    "GET",
    "/admin/v1/settings",
    tag=STAFF,
    auth="staff",
    role="viewer",
    summary="Our settings (minimum cell size, channels, quiet hours, limits)",
    response=answers.SettingsOut,
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
    response=answers.SettingsOut,
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
    large_body=True,
    summary="Import CBS wijken and buurten (KWB CSV + GeoJSON)",
    response=answers.AreaImportOut,
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


# --- regions (issue 13) ---------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/regions",
    tag=STAFF,
    auth="staff",
    role="viewer",
    query=out.RegionQuery,
    response=out.RegionOut,
    many=True,
    summary="Our own regions (named sets of buurten), current versions",
)
def list_regions(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "list_regions", ctx.municipality, ctx.query.get("archived", False))


@route(
    "POST",
    "/admin/v1/regions",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.RegionIn,
    response=out.RegionOut,
    success=201,
    summary="Define a region from a list of buurt codes",
    description="422 when a buurt is not ours, or when the region would give a small group "
    "away: it differs from a wijk, the gemeente or another region only by buurten with too "
    "few inhabitants (the problem names the region, the other area and the buurten).",
    errors=(409,),  # all 9999 region codes used
)
def create_region(ctx: RequestContext) -> Reply:
    region = ctx.rpc(
        "panel", "create_region", ctx.municipality, ctx.body, ctx.principal.claims.get("email")
    )
    return Reply(region, status=201)


@route(
    "POST",
    "/admin/v1/regions/import",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.RegionImportIn,
    response=out.RegionProposalOut,
    many=True,
    large_body=True,
    summary="Propose regions from GeoJSON polygons (nothing is stored)",
    description="Per feature (properties.name), the buurten whose area lies mostly inside it, "
    "with their shares, and those that touch it but lie mostly outside. Confirm a proposal "
    "by POSTing its name and buurt_codes to /admin/v1/regions.",
)
def propose_regions(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "propose_regions", ctx.municipality, ctx.body)


@route(
    "GET",
    "/admin/v1/regions/<region_code>",
    tag=STAFF,
    auth="staff",
    role="viewer",
    query=out.RegionVersionQuery,
    response=out.RegionOut,
    resource="region",
    summary="One region: its current version, or ?version=N",
)
def get_region(ctx: RequestContext) -> Any:
    return ctx.rpc(
        "panel", "get_region", ctx.municipality, ctx.params["region_code"], ctx.query.get("version")
    )


@route(
    "PATCH",
    "/admin/v1/regions/<region_code>",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.RegionUpdate,
    response=out.RegionOut,
    resource="region",
    summary="Change name or buurten: a new version (polls keep theirs)",
    description="422 as for creating a region.",
    errors=(409,),  # an archived region
)
def update_region(ctx: RequestContext) -> Any:
    return ctx.rpc(
        "panel",
        "update_region",
        ctx.municipality,
        ctx.params["region_code"],
        ctx.body,
        ctx.principal.claims.get("email"),
    )


@route(
    "DELETE",
    "/admin/v1/regions/<region_code>",
    tag=STAFF,
    auth="staff",
    role="admin",
    response=out.RegionOut,
    resource="region",
    summary="Archive a region: no new poll can use it (published polls keep theirs)",
)
def archive_region(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "archive_region", ctx.municipality, ctx.params["region_code"])


@route(
    "POST",
    "/admin/v1/invitation-batches",
    tag=STAFF,
    auth="staff",
    role="admin",
    body=panel.InvitationBatchIn,
    success=201,
    summary="Generate invitation codes for recruitment letters (the CSV is shown once)",
    response=answers.InvitationBatchOut,
    errors=(404,),  # no areas imported yet
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
    many=True,
    response=answers.InvitationBatchSummaryOut,
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
    response=answers.CompositionOut,
    errors=(404,),  # no areas imported yet
)
def composition(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "panel_composition", ctx.municipality)


@route(
    "GET",
    "/admin/v1/audience/reach",
    tag=STAFF,
    auth="staff",
    role="viewer",
    query=out.ReachQuery,
    response=out.ReachOut,
    summary="How many panel members an audience would invite if published now",
    description="The same eligibility as publishing (consent, the monthly invitation cap); "
    "a sample counts at most sample_size per area. A count of 1 to k-1 is hidden "
    "(members null, suppressed true), like every small figure.",
)
def audience_reach(ctx: RequestContext) -> Any:
    query = ctx.query
    codes = [c for c in query["area_codes"].split(",") if c]
    kind = query["kind"]
    audience = {
        "kind": kind,
        "area_codes": codes if kind != "municipality" else [],
        "sample_size": query.get("sample_size"),
        "kinds": list(dict.fromkeys(k for k in query["kinds"].split(",") if k)),
    }
    if kind == "sample" and not audience["sample_size"]:
        raise InvalidInput(
            "a sample needs a sample_size",
            [
                {
                    "field": "query.sample_size",
                    "code": "required",
                    "message": "a sample needs a sample_size",
                }
            ],
        )
    k = ctx.rpc("panel", "get_settings", ctx.municipality)["min_cell_size"]
    members = ctx.rpc("notify", "audience_reach", ctx.municipality, audience)
    hidden = bool(suppress_areas({"audience": members}, Hierarchy({"audience": None}), k))
    return {"members": None if hidden else members, "suppressed": hidden, "k": k}


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
    errors=(409,),  # an account with this address exists
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
    errors=(409,),  # one's own account; an invited account
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
    errors=(409,),  # previous_poll_id: a published poll already follows that wave
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
    errors=(409, 412),  # not a draft, changed meanwhile; If-Match not a version
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
    description="The regions the audience names (region_codes) are frozen at their current "
    "versions; 422 when one is unknown or archived.",
    errors=(409,),  # not a draft, or a published poll already follows the wave it follows
)
def publish_poll(ctx: RequestContext) -> Any:
    poll = ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"])
    codes = (poll.get("audience") or {}).get("region_codes") or []
    if not codes or poll.get("status") != "draft":
        return ctx.rpc("polls", "publish_poll", ctx.municipality, ctx.params["poll_id"])
    # The regions' current versions, frozen into the poll (its results keep them).
    regions = ctx.rpc("panel", "regions_for_poll", ctx.municipality, codes)
    return ctx.rpc("polls", "publish_poll", ctx.municipality, ctx.params["poll_id"], regions)


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/close",
    tag=POLLS,
    auth="staff",
    role="editor",
    response=out.PollOut,
    resource="poll",
    summary="Close now (idempotent)",
    errors=(409,),  # a draft
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
    errors=(409,),  # not closed
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
    response=answers.DeliverySummaryOut,
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
    many=True,
    response=answers.DeadDeliveryOut,
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
    response=answers.ReplayedOut,
)
def replay_dead_deliveries(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "replay_dead_deliveries", ctx.municipality, ctx.body)


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="Results per question for the gemeente, each wijk and buurt: counts, weighted "
    "percentages with 95% intervals, response rates; small cells suppressed",
    errors=(409,),  # the poll was never opened
    # JSON text, passed on (never projected: ~1 MB at a million responses, docs/benchmarks.md);
    # the OpenAPI conformance test validates it against this schema.
    response=answers.ResultsOut,
)
def poll_results(ctx: RequestContext) -> Any:
    # As JSON text: responses caches the encoded document; it is passed on, not re-encoded.
    return JSONText(_from_responses(ctx, "results_json", None, ctx.query["respondents"]))


def _from_responses(ctx: RequestContext, method: str, *args: Any) -> Any:
    """One RPC: responses knows the polls that opened and each municipality's minimum cell
    size. Only when it does not know the poll is polls asked whether it exists and is ours
    (404 otherwise) but has not opened yet (409)."""
    try:
        return ctx.rpc("responses", method, ctx.municipality, ctx.params["poll_id"], *args)
    except NotFound:
        poll = ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"])
        if poll["status"] in ("draft", "scheduled"):
            raise Conflict("this poll has not opened yet: there are no results") from None
        raise


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/trend",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="The poll and the earlier waves of its series: per question and area the weighted "
    "share per wave with its 95% interval, and the change between waves with its interval "
    "and significance (docs/methods.md, Trends)",
    errors=(409,),  # the poll was never opened
    response=answers.TrendOut,
    project_reply=False,  # as large as the results of every wave: validated in the tests
)
def poll_trend(ctx: RequestContext) -> Any:
    # The waves that opened, compared where their results live (responses): each wave's
    # released document, read like any results read.
    waves = ctx.rpc("polls", "series", ctx.municipality, ctx.params["poll_id"])
    this = next((w for w in waves if w["id"] == ctx.params["poll_id"]), None)
    if this is not None and this["status"] in ("draft", "scheduled"):
        raise Conflict("this poll has not opened yet: there are no results")
    opened = [
        {"poll_id": w["id"], "wave": w["wave"]}
        for w in waves
        if w["status"] not in ("draft", "scheduled")
    ]
    return ctx.rpc("responses", "trend", ctx.municipality, opened, ctx.query["respondents"])


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/series",
    tag=POLLS,
    auth="staff",
    role="viewer",
    resource="poll",
    response=answers.SeriesOut,
    summary="The waves of the poll's series, first to last, the same from any of them: poll, "
    "wave, the wave it follows, status and dates (figures: the trend)",
)
def poll_series(ctx: RequestContext) -> Any:
    return {"waves": ctx.rpc("polls", "series_waves", ctx.municipality, ctx.params["poll_id"])}


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _export(ctx: RequestContext, fmt: str) -> Reply:
    """The results page as a table, rendered by responses (services/responses/exports.py):
    the same suppressed figures, nothing more."""
    file = _from_responses(ctx, "results_export", ctx.query["respondents"], fmt)
    return _file_reply(file, f"buurtpeil-resultaten-{file['poll_id']}", fmt)


def _file_reply(file: dict[str, Any], stem: str, fmt: str) -> Reply:
    """A file responses rendered (``body`` base64, ``generated_at``) as a download named
    ``<stem>-<date>.<fmt>``; never cached (it holds the municipality's figures)."""
    generated = datetime.fromisoformat(file["generated_at"])
    return Reply(
        base64.b64decode(file["body"]),
        content_type=EXPORT_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{stem}-{generated:%Y-%m-%d}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results.csv",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    resource="poll",
    media_type="text/csv",
    summary="The results as CSV for Dutch Excel (UTF-8 with BOM, ';', decimal comma), one row "
    "per question, area and option; suppressed cells empty and marked",
    errors=(409,),  # the poll was never opened
)
def poll_results_csv(ctx: RequestContext) -> Reply:
    return _export(ctx, "csv")


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/results.xlsx",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    resource="poll",
    media_type=EXPORT_TYPES["xlsx"],
    summary="The results as XLSX: the same table with typed numbers, and a sheet about the "
    "figures; suppressed cells empty and marked",
    errors=(409,),  # the poll was never opened
)
def poll_results_xlsx(ctx: RequestContext) -> Reply:
    return _export(ctx, "xlsx")


# --- the safety overview per area (issue 13) -----------------------------------------------------


@route(
    "GET",
    "/admin/v1/overview",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    response=answers.OverviewOut,
    summary="The safety overview: per area (gemeente, wijk, buurt, region) the latest weighted "
    "share or mean of each tracked question of the safety polls with its 95% interval, a trend "
    "only where the change from the previous wave is significant, the open measures of "
    "published feedback and when the area was last polled; hidden figures marked with the "
    "reason (docs/methods.md, Safety overview)",
)
def overview(ctx: RequestContext) -> Any:
    # The figures are responses' (from the released results), the measures feedback's: one
    # call to each, merged by area code.
    found = ctx.rpc("responses", "safety_overview", ctx.municipality, ctx.query["respondents"])
    measures = ctx.rpc("feedback", "open_measures_by_area", ctx.municipality)
    for area in found["areas"]:
        area["open_measures"] = measures.get(area["code"], 0)
    return found


def _overview_export(ctx: RequestContext, fmt: str) -> Reply:
    """The overview as a table, rendered by responses (services/responses/overview.py) with
    feedback's open measures per area."""
    measures = ctx.rpc("feedback", "open_measures_by_area", ctx.municipality)
    file = ctx.rpc(
        "responses",
        "safety_overview_export",
        ctx.municipality,
        measures,
        ctx.query["respondents"],
        fmt,
    )
    return _file_reply(file, f"buurtpeil-veiligheid-{file['municipality_code']}", fmt)


@route(
    "GET",
    "/admin/v1/overview.csv",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    media_type="text/csv",
    summary="The safety overview as CSV for Dutch Excel (UTF-8 with BOM, ';', decimal comma), "
    "one row per area, question and option; hidden figures empty and marked with the reason",
)
def overview_csv(ctx: RequestContext) -> Reply:
    return _overview_export(ctx, "csv")


@route(
    "GET",
    "/admin/v1/overview.xlsx",
    tag=POLLS,
    query=out.ResultsQuery,
    auth="staff",
    role="viewer",
    media_type=EXPORT_TYPES["xlsx"],
    summary="The safety overview as XLSX: the same table with typed numbers, and a sheet "
    "about the figures",
)
def overview_xlsx(ctx: RequestContext) -> Reply:
    return _overview_export(ctx, "xlsx")
