"""The gateway's settings (its web pages' included), read once at setup
(services/common/settings.py); the defaults here are the only ones in the code (config.yml
maps each key to its environment variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import Reader, Secret

DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_LARGE_BODY = 25_000_000


@dataclass(frozen=True)
class GatewaySettings:
    jwt_public_key_files: tuple[str, ...]  # more than one while keys rotate
    jwt_issuer: str
    jwt_resident_audience: str
    jwt_staff_audience: str
    link_public_key_files: tuple[str, ...]  # notify's personal links; () : links refused
    link_audience: str
    development: bool
    cors_origins: tuple[str, ...]
    max_body_bytes: int  # every route's body (and web form) but the area import
    max_large_body_bytes: int  # area imports
    cache_resync_interval: float  # seconds between resyncs of the in-memory copies
    receipt_secret: Secret  # signs receipt ids
    intake_publish_channels: int
    redis_url: str
    redis_key_prefix: str
    redis_timeout: float  # seconds per Redis call
    redis_pause: float  # seconds without trying Redis after a failure
    rate_limits: dict[str, str]  # name: "<n>/min" or "<n>/min burst <b>" (ratelimit.py)
    web_secret: Secret  # signs the web pages' CSRF tokens; RECEIPT_SECRET if unset
    web_cookie_secure: str  # "auto" (Secure unless on loopback), "true" or "false"
    map_tile_url: str  # "": the map shows the buurt polygons alone
    map_tile_attribution: str

    @classmethod
    def load(cls, r: Reader) -> GatewaySettings:
        receipt_secret = r.secret("RECEIPT_SECRET")
        return cls(
            jwt_public_key_files=r.items("JWT_PUBLIC_KEY_FILE", required=True),
            jwt_issuer=r.text("JWT_ISSUER"),
            jwt_resident_audience=r.text("JWT_RESIDENT_AUDIENCE"),
            jwt_staff_audience=r.text("JWT_STAFF_AUDIENCE"),
            link_public_key_files=r.items("LINK_PUBLIC_KEY_FILE"),
            link_audience=r.text("LINK_AUDIENCE", "buurtpeil-link"),
            development=r.development,
            cors_origins=r.items("CORS_ORIGINS"),
            max_body_bytes=r.integer("MAX_BODY_BYTES", DEFAULT_MAX_BODY),
            max_large_body_bytes=r.integer("MAX_LARGE_BODY_BYTES", DEFAULT_MAX_LARGE_BODY),
            cache_resync_interval=r.number("CACHE_RESYNC_INTERVAL", 30),
            receipt_secret=receipt_secret,
            intake_publish_channels=r.integer("INTAKE_PUBLISH_CHANNELS", 8),
            redis_url=r.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_key_prefix=r.text("REDIS_KEY_PREFIX", "buurtpeil"),
            redis_timeout=r.number("REDIS_TIMEOUT", 0.25),
            redis_pause=r.number("REDIS_PAUSE", 2),
            rate_limits=r.mapping("RATE_LIMITS"),
            web_secret=r.optional_secret("WEB_SECRET") or receipt_secret,
            web_cookie_secure=r.text("WEB_COOKIE_SECURE", "auto").lower(),
            map_tile_url=r.text("MAP_TILE_URL", ""),
            map_tile_attribution=r.text("MAP_TILE_ATTRIBUTION", ""),
        )
