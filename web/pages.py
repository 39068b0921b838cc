"""The page table and what every page request goes through — the web's counterpart of
``gateway/routing.py``.

A page declares its method, path, app (resident, staff, public), whether it is personal (needs a
session; ``Cache-Control: no-store``), and what its path id names (for the generated tenancy
tests). ``serve`` does the rest once: the session from cookies (refreshing an expired access
token), the CSRF check on every POST, the language, the security headers (a strict CSP without
inline script or style), and an HTML error page that says what to do for every error — an
object of another municipality, like one that does not exist, is an HTML 404.

Pages get their data only through ``PageContext.api``: the gateway's own route functions, called
through ``routing.invoke`` with the session's token — the same authentication, roles, tenancy,
rate limits and validation as the JSON API, no second copy of any rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from nameko.extensions import DependencyProvider
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from gateway.errors import AuthenticationRequired, RouteNotFound, ServiceUnavailable, problem_type
from gateway.routes import ROUTES
from gateway.routing import Reply, Route, check_text_inputs, invoke, limit_body
from gateway.settings import GatewaySettings
from gateway.webserver import http
from services.common.cache import StaleTolerantCache
from services.common.errors import Unavailable
from services.common.metrics import HTTP_RESPONSES
from services.common.settings import settings_of
from web import i18n, weighting_notes
from web.messages import N_, error_text
from web.session import (
    CSRF_FIELD,
    CookieJar,
    Csrf,
    LinkSessions,
    SessionKind,
    Successors,
    secure_cookies,
)
from web.static_files import Asset, StaticFiles
from web.theme import theme_asset

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
ROUTES_BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}
MUNICIPALITY_CODE = re.compile(r"^GM\d{4}$")


@dataclass(frozen=True)
class Page:
    name: str  # the nameko entrypoint's name: "page_" + the handler's name
    method: str  # "GET" or "GET,POST"
    path: str
    handler: Callable[[PageContext], Response]
    summary: str
    app: str  # "resident" | "staff" | "public"
    personal: bool = False  # needs a session; never cached
    resource: str | None = None  # what a path id names, for the generated tenancy tests
    role: str | None = None  # staff: the role a POST needs (the route's own role decides)
    large_body: bool = False  # a form with a file for a ``large_body`` route (an upload)

    @property
    def changes_state(self) -> bool:
        return "POST" in self.method


PAGES: list[Page] = []


def page(method: str, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        name = f"page_{handler.__name__}"
        # The name is the gateway's entrypoint: a second page of the same name would replace
        # the first one's entrypoint, and its path would answer 404.
        if any(p.name == name for p in PAGES):
            raise ValueError(f"two pages named {name}: give the handlers different names")
        PAGES.append(Page(name, method, path, handler, **kwargs))
        return handler

    return register


# --- per-process state --------------------------------------------------------------------------


class WebState(DependencyProvider):
    """What the pages share in a gateway process: static files, the CSRF secret, refresh-token
    successors, the template environments and a short cache of municipalities' branding."""

    def setup(self) -> None:
        settings = settings_of(self.container, GatewaySettings.load)
        self.static = StaticFiles()
        self.csrf = Csrf(settings.web_secret.reveal())
        self.link_sessions = LinkSessions(settings.web_secret.reveal())
        self.cookie_setting = settings.web_cookie_secure
        self.tile_url = settings.map_tile_url
        self.tile_attribution = settings.map_tile_attribution
        self.successors = Successors()
        self.branding = StaleTolerantCache(ttl=60)
        self.themes: dict[tuple[str, Any, Any], Asset] = {}
        self.environments = {lang: environment(lang) for lang in i18n.LANGUAGES}

    def get_dependency(self, worker_ctx: Any) -> WebState:
        return self


def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml", "svg"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # jinja2.ext.i18n adds install_gettext_translations to the environment.
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


# --- a request --------------------------------------------------------------------------------


class Redirect(Exception):
    def __init__(self, location: str, status: int = 303):
        self.location, self.status = location, status


class NotSignedIn(Exception):
    """A personal page without a (valid) session: to the app's start page."""


@dataclass
class PageContext:
    request: Request
    page: Page
    params: dict[str, str]
    gateway: Any  # the worker's service instance
    web: WebState
    jar: CookieJar
    lang: str
    csrf_token: str
    kind: SessionKind | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    # A participant verified by a personal link (web/link.py), not by an access token.
    principal: Any = None
    extra_img_origins: set[str] = field(default_factory=set)

    # --- translations -------------------------------------------------------------------------

    def _(self, message: str, **values: Any) -> str:
        text = i18n.translations(self.lang).gettext(message)
        return text % values if values else text

    # --- calling the gateway ------------------------------------------------------------------

    def api(
        self,
        route_name: str | Route,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        """Call the gateway route ``route_name`` as the signed-in user: its own rules apply.
        A Route object instead of a name: one the gateway keeps for its pages only."""
        route = ROUTES_BY_NAME[route_name] if isinstance(route_name, str) else route_name
        token = self.tokens.get("access_token")
        return invoke(
            self.gateway,
            route,
            self.request,
            params or {},
            authorization=f"Bearer {token}" if token else None,
            read_body=lambda: body if body is not None else {},
            query=query or {},
            principal=self.principal,
        )

    @property
    def signed_in(self) -> bool:
        return bool(self.claims)

    # --- the form -----------------------------------------------------------------------------

    @property
    def form(self) -> MultiDict:
        return self.request.form

    # --- answers ------------------------------------------------------------------------------

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        env = self.web.environments[self.lang]
        html = env.get_template(template).render(**self.template_globals(), **values)
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def template_globals(self) -> dict[str, Any]:
        return {
            "static": self.web.static.url,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf_token,
            "lang": self.lang,
            "languages": i18n.LANGUAGE_NAMES,
            "request_path": self.request.path,
            "signed_in": self.signed_in,
            "page_name": self.page.name,
            "page_app": self.page.app,
            "error_text": lambda error: error_text(error, i18n.translations(self.lang).gettext),
            "weighting_note": lambda note: weighting_notes.translate(
                note, i18n.translations(self.lang).gettext, self.lang
            ),
        }

    def redirect(self, location: str, status: int = 303) -> Response:
        return Response(status=status, headers={"Location": location})


# --- sessions -------------------------------------------------------------------------------


def load_session(ctx: PageContext, kind: SessionKind) -> bool:
    """Sign the request in from its cookies: the access token, or — expired — a fresh one for
    the refresh token. False (and the cookies cleared) when neither works."""
    ctx.kind = kind
    access = ctx.request.cookies.get(kind.access_cookie)
    refresh = ctx.request.cookies.get(kind.refresh_cookie)
    if access:
        try:
            principal = ctx.gateway.authenticator.authenticate(f"Bearer {access}", kind.auth)
            ctx.tokens, ctx.claims = {"access_token": access}, principal.claims
            return True
        except AuthenticationRequired:
            pass
    if refresh and kind.refresh_route in ROUTES_BY_NAME:
        try:
            tokens = ctx.web.successors.exchange(
                refresh,
                lambda: ctx.api(kind.refresh_route, body={"refresh_token": refresh}).body,
            )
        except (ServiceUnavailable, Unavailable):
            raise  # the panel is down: say so, but keep the session
        except Exception:  # noqa: BLE001 - refused, revoked, expired: signed out
            forget_session(ctx)
            return False
        return start_session(ctx, kind, tokens)
    if access or refresh:
        forget_session(ctx)
    return False


def start_session(ctx: PageContext, kind: SessionKind, tokens: dict[str, Any]) -> bool:
    """Keep freshly issued tokens in the session cookies (after joining, or a refresh)."""
    ctx.kind = kind
    principal = ctx.gateway.authenticator.authenticate(
        f"Bearer {tokens['access_token']}", kind.auth
    )
    ctx.tokens, ctx.claims = {"access_token": tokens["access_token"]}, principal.claims
    ctx.jar.set(
        kind.access_cookie, tokens["access_token"], path=kind.path, max_age=tokens.get("expires_in")
    )
    if tokens.get("refresh_token"):
        ctx.jar.set(
            kind.refresh_cookie, tokens["refresh_token"], path=kind.path, max_age=kind.lifetime
        )
    return True


# --- serving ----------------------------------------------------------------------------------


def serve(gateway: Any, page: Page, request: Request, params: dict[str, str]) -> Response:
    web: WebState = gateway.web_state
    jar = CookieJar(secure=secure_cookies(request, web.cookie_setting))
    lang = i18n.choose_language(request)
    if request.args.get("lang") in i18n.LANGUAGES:
        jar.set(i18n.LANGUAGE_COOKIE, lang, path="/", max_age=365 * 24 * 3600)
    csrf_cookie = web.csrf.ensure_cookie(request, jar)
    ctx = PageContext(
        request, page, params, gateway, web, jar, lang, web.csrf.token_for(csrf_cookie)
    )
    try:
        # Forms are bounded like JSON bodies (MAX_BODY_BYTES), before anything reads them.
        limit_body(
            request, gateway.max_large_body_bytes if page.large_body else gateway.max_body_bytes
        )
        check_text_inputs(params, {})
        if page.changes_state and request.method == "POST" and not web.csrf.valid(request):
            response = error_page(ctx, 403, csrf=True)
        else:
            response = page.handler(ctx)
    except Redirect as moved:
        response = ctx.redirect(moved.location, moved.status)
    except NotSignedIn:
        response = ctx.redirect(app_start(page, params) + "?verlopen=1")
    except AuthenticationRequired:
        forget_session(ctx)
        response = ctx.redirect(app_start(page, params) + "?verlopen=1")
    except Exception as exc:  # noqa: BLE001 - every error becomes a page that says what to do
        response = error_page(ctx, problem_type(exc).status, exc=exc)
    jar.apply(response)
    secure_headers(ctx, response)
    HTTP_RESPONSES.labels(page.name, str(response.status_code)).inc()
    return response


def app_start(page: Page, params: dict[str, str]) -> str:
    if page.app == "resident" and "municipality_code" in params:
        return f"/app/{params['municipality_code']}/"
    if page.app == "staff":
        return "/staff/"
    return "/"


def forget_session(ctx: PageContext) -> None:
    if ctx.kind is not None:
        ctx.jar.clear(ctx.kind.access_cookie, path=ctx.kind.path)
        ctx.jar.clear(ctx.kind.refresh_cookie, path=ctx.kind.path)
    ctx.tokens, ctx.claims = {}, {}


ERROR_TEXTS = {
    400: (N_("This request could not be understood"), N_("Go back and try again.")),
    401: (
        N_("Please sign in again"),
        N_("Your session has ended. Start again from the home page."),
    ),
    403: (
        N_("This is not allowed"),
        N_("You do not have access to this. Go back to the home page."),
    ),
    404: (
        N_("Page not found"),
        N_(
            "The page may have moved, or the poll may have closed. Check the address, or go "
            "back to the home page."
        ),
    ),
    409: (N_("That did not work"), N_("This was done already, or cannot be done right now.")),
    413: (N_("That is too much at once"), N_("Send less, and try again.")),
    422: (
        N_("Check what you filled in"),
        N_("Some answers are not valid. Go back and correct them."),
    ),
    429: (N_("Too many attempts"), N_("Wait a minute and try again.")),
    503: (
        N_("This is temporarily unavailable"),
        N_("Part of the service is not answering. Try again in a few minutes."),
    ),
    500: (
        N_("Sorry, something went wrong on our side"),
        N_("We have logged it. Try again later."),
    ),
}
CSRF_TEXTS = (
    N_("This form has expired"),
    N_(
        "For your safety a form works only in the browser that opened it. Go back, reload the "
        "page and send it again."
    ),
)


def error_page(
    ctx: PageContext, status: int, *, exc: Exception | None = None, csrf=False
) -> Response:
    if status == 500 and exc is not None:
        log.error("page %s failed", ctx.page.name, exc_info=exc)
    heading, advice = ERROR_TEXTS.get(status, ERROR_TEXTS[400 if status < 500 else 500])
    if csrf:
        heading, advice = CSRF_TEXTS
    errors = getattr(exc, "errors", None) if status == 422 else None
    headers = {}
    if status in (429, 503):
        headers["Retry-After"] = str(
            getattr(exc, "headers", {}).get("Retry-After", 60 if status == 429 else 5)
        )
    try:
        response = ctx.render(
            "error.html",
            status=status,
            heading=ctx._(heading),
            advice=ctx._(advice),
            errors=errors or [],
            home=app_start(ctx.page, ctx.params),
            **municipality_values(ctx, quiet=True),
        )
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        log.exception("rendering the error page failed")
        response = Response(ctx._(heading), status=status, content_type="text/plain; charset=utf-8")
    response.headers.update(headers)
    return response


def municipality_values(ctx: PageContext, quiet: bool = False) -> dict[str, Any]:
    """The municipality whose app this is, for the layout (name, colours, logo, theme)."""
    code = ctx.params.get("municipality_code")
    if ctx.page.app == "staff":  # the dashboard of the signed-in staff member's municipality
        code = ctx.claims.get("mun")
    if not code:
        return {"municipality": None}
    try:
        found = municipality(ctx, code)
    except Exception:
        if quiet:
            return {"municipality": None}
        raise
    return {"municipality": found, "app": app_links(found)}


def municipality(ctx: PageContext, code: str) -> dict[str, Any]:
    if not MUNICIPALITY_CODE.match(code):
        raise RouteNotFound("no such municipality")

    def fetch() -> dict[str, Any]:
        reply = ctx.api("branding", params={"municipality_code": code})
        return dict(reply.body)

    branding = ctx.web.branding.get(code, fetch)
    theme = theme_of(ctx.web, code, branding)
    if branding.get("logo_url"):
        parts = urlsplit(branding["logo_url"])
        ctx.extra_img_origins.add(f"{parts.scheme}://{parts.netloc}")
    return {
        **branding,
        "code": code,
        "theme_url": f"/theme/{code}/{theme.digest}.css",
        "base": f"/app/{code}/",
    }


def theme_of(web: WebState, code: str, branding: dict[str, Any]) -> Asset:
    """The municipality's theme CSS for its current colours (made once per colour change)."""
    key = (code, branding.get("primary_color"), branding.get("text_on_primary"))
    if key not in web.themes:
        web.themes[key] = theme_asset(code, branding)
    return web.themes[key]


def app_links(found: dict[str, Any]) -> dict[str, str]:
    """The addresses of a municipality's resident app."""
    base = found["base"]
    return {
        "home": base,
        "polls": base + "peilingen",
        "feedback": base + "terugkoppeling",
        "timeline": base + "tijdlijn",
        "notifications": base + "meldingen",
        "profile": base + "profiel",
        "leave": base + "uitschrijven",
        "join": base + "aanmelden",
        "signup": base + "aanmelden-email",
        "sign_out": base + "afmelden",
        "manifest": base + "manifest.webmanifest",
        "service_worker": base + "sw.js",
        "icon": base + "icon.svg",
        "devices": base + "apparaten",
        "locate": base + "buurt-zoeken",
        "buurten": base + "buurten.geojson",
    }


def secure_headers(ctx: PageContext, response: Response) -> None:
    img = " ".join(["'self'", "data:", *sorted(ctx.extra_img_origins), *tile_origin(ctx.web)])
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
        "worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "geolocation=(self), camera=(), microphone=()"
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store" if ctx.page.personal else "no-cache"
        if not ctx.page.personal:
            response.headers["Vary"] = "Cookie"


def tile_origin(web: WebState) -> list[str]:
    if not web.tile_url:
        return []
    parts = urlsplit(web.tile_url.replace("{s}", "a"))
    return [f"{parts.scheme}://{parts.netloc}"]


# --- the gateway mounts these ---------------------------------------------------------------


def make_entrypoint(page: Page) -> Any:
    def entry(self: Any, request: Request, **params: str) -> Response:
        return serve(self, page, request, params)

    entry.__name__ = page.name
    entry.__doc__ = page.summary
    return http(page.method, page.path)(entry)


def entrypoints() -> dict[str, Any]:
    """Every page as a nameko @http entrypoint (one per page, so metrics count per page)."""
    import web.link  # noqa: F401 - registration
    import web.resident  # noqa: F401 - registration
    import web.shared  # noqa: F401 - registration
    import web.staff  # noqa: F401 - registration
    import web.staff_admin  # noqa: F401 - registration
    import web.staff_overview  # noqa: F401 - registration
    import web.staff_paper  # noqa: F401 - registration
    import web.staff_polls  # noqa: F401 - registration
    import web.staff_regions  # noqa: F401 - registration
    import web.staff_trends  # noqa: F401 - registration

    return {p.name: make_entrypoint(p) for p in PAGES}
