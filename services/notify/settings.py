"""notify's settings, read once at setup (services/common/settings.py); the defaults here are
the only ones in the code (config.yml maps each key to its environment variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import MailSettings, Reader, Secret
from services.notify.push_endpoints import DEFAULT_HOSTS


@dataclass(frozen=True)
class NotifySettings:
    database_url: str
    mail: MailSettings
    app_url: str  # links in e-mails (unsubscribe, the personal link to a poll)
    link_private_key_file: str | None  # signs personal links (links.py); None: no link
    link_issuer: str
    link_audience: str
    development: bool
    unsubscribe_secret: Secret  # signs unsubscribe links
    vapid_private_key_file: str
    vapid_subject: str
    # Requests in flight per batch of deliveries (Web Push pool and FCM session alike).
    delivery_concurrency: int
    delivery_max_attempts: int
    delivery_retry_delays: tuple[float, ...]
    dispatcher: bool  # false: this process runs no dispatcher loop
    dispatch_poll_interval: float
    delivery_sweep_interval: float
    delivery_stale_after: float
    push_proxy: str | None  # host:port of an HTTP proxy for Web Push (CONNECT)
    push_request_deadline: float
    push_max_reply_bytes: int
    push_endpoint_hosts: tuple[str, ...]
    push_development_origins: tuple[str, ...]  # development mode only; () anywhere else
    # Devices per participant (each gets every notification): beyond it, the least recently
    # reached is let go when another registers.
    max_devices: int
    fcm_project_id: str | None  # None: no FCM
    fcm_base_url: str
    fcm_credentials_file: str | None
    fcm_static_token: Secret | None

    @classmethod
    def load(cls, r: Reader) -> NotifySettings:
        return cls(
            database_url=r.text("DATABASE_URL"),
            mail=MailSettings.load(r),
            app_url=r.text("APP_URL"),
            link_private_key_file=r.optional_text("LINK_PRIVATE_KEY_FILE") or None,
            link_issuer=r.text("JWT_ISSUER", "buurtpeil"),
            link_audience=r.text("LINK_AUDIENCE", "buurtpeil-link"),
            development=r.development,
            unsubscribe_secret=r.secret("UNSUBSCRIBE_SECRET"),
            vapid_private_key_file=r.text("VAPID_PRIVATE_KEY_FILE"),
            vapid_subject=r.text("VAPID_SUBJECT"),
            delivery_concurrency=r.integer("DELIVERY_CONCURRENCY", 64),
            delivery_max_attempts=r.integer("DELIVERY_MAX_ATTEMPTS", 6),
            delivery_retry_delays=r.numbers("DELIVERY_RETRY_DELAYS", (5, 30, 120, 600, 3600)),
            dispatcher=r.flag("DISPATCHER", True),
            dispatch_poll_interval=r.number("DISPATCH_POLL_INTERVAL", 1.0),
            delivery_sweep_interval=r.number("DELIVERY_SWEEP_INTERVAL", 300),
            delivery_stale_after=r.number("DELIVERY_STALE_AFTER", 3600),
            push_proxy=r.optional_text("PUSH_PROXY"),
            push_request_deadline=r.number("PUSH_REQUEST_DEADLINE", 15),
            push_max_reply_bytes=r.integer("PUSH_MAX_REPLY_BYTES", 16384),
            push_endpoint_hosts=r.items("PUSH_ENDPOINT_HOSTS") or DEFAULT_HOSTS,
            push_development_origins=(r.items("PUSH_DEVELOPMENT_ORIGINS") if r.development else ()),
            max_devices=r.integer("MAX_DEVICES_PER_PARTICIPANT", 20),
            fcm_project_id=r.optional_text("FCM_PROJECT_ID"),
            fcm_base_url=r.text("FCM_BASE_URL", "https://fcm.googleapis.com"),
            fcm_credentials_file=r.optional_text("FCM_CREDENTIALS_FILE"),
            fcm_static_token=r.optional_secret("FCM_STATIC_TOKEN"),
        )
