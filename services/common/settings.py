"""Typed settings: a service reads its configuration once, when its container is set up, into a
small frozen dataclass, and the code reads typed fields instead of ``config.get(key, default)``.

- Defaults live in one place: the ``load`` function of each settings class (CommonSettings
  here for what every service shares; ``services/<service>/settings.py``,
  ``gateway/settings.py`` for the rest).
- Values are checked: a key that is missing or of the wrong kind stops the service at start
  with one message naming every such key.
- Secrets are :class:`Secret`: their repr and str hide the value, ``reveal()`` gives it. A
  secret has no working default outside development mode: unset, or still the development
  default of config.yml, the service refuses to start (services/common/environment.py).

``settings_of(container, load)`` builds a container's settings the first time any of its
providers asks (providers are set up concurrently) and hands the same object to every later
caller.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nameko.extensions import DependencyProvider

from services.common.config import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEVELOPMENT = "development"
DEVELOPMENT_SECRET = "development-only-change-me"  # noqa: S105 - the value to refuse
DEVELOPMENT_KEY_DIR = ".keys/"

# Dead letters and their retries (deadletter.py): the defaults of RETRY_DELAYS and
# DEAD_LETTER_RETENTION.
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0)
DEFAULT_RETENTION = 14 * 24 * 3600.0  # dead letters holding personal data

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class Secret:
    """A configured secret. Its repr and str hide it (settings objects get logged and shown in
    tracebacks); ``reveal()`` gives the value to the code that signs or logs in with it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


def is_development(config: Mapping[str, Any]) -> bool:
    return str(config.get("ENVIRONMENT", "production")).strip().lower() == DEVELOPMENT


def development_defaults(config: Mapping[str, Any]) -> list[str]:
    """What in ``config`` is a development default, one phrase per setting."""
    found = []
    for key, value in sorted(config.items()):
        if not isinstance(value, str):
            continue
        if value == DEVELOPMENT_SECRET:
            found.append(f"{key} is the development default {DEVELOPMENT_SECRET!r}")
        elif key.endswith("_KEY_FILE") and any(
            path.strip().removeprefix("./").startswith(DEVELOPMENT_KEY_DIR)
            for path in value.split(",")
        ):
            found.append(f"{key} is a development key in {DEVELOPMENT_KEY_DIR} ({value})")
        elif key == "PUSH_DEVELOPMENT_ORIGINS" and value.strip():
            found.append(f"{key} is set ({value}): a local push service, for development only")
    return found


def _unset(value: Any) -> bool:
    # An empty ${VAR:} in config.yml loads as None; an empty string or list means unset too.
    return value is None or value == "" or value == [] or value == ()


class Reader:
    """Typed reads of a nameko config dict. A bad or missing value is noted (``problems``,
    ``refusals``) and a harmless stand-in returned, so one start names every bad key."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.development = is_development(config)
        self.environment = str(config.get("ENVIRONMENT", "production")).strip().lower()
        self.problems: list[str] = []
        self.refusals: list[str] = []  # secrets missing outside development

    def _get(self, key: str) -> Any:
        value = self.config.get(key)
        return None if _unset(value) else value

    def _wrong(self, key: str, kind: str, value: Any) -> None:
        self.problems.append(f"{key} must be {kind}, not {value!r}")

    def text(self, key: str, default: str | None = None) -> str:
        """A string; without a default the key is required."""
        value = self._get(key)
        if value is None:
            if default is None:
                self.problems.append(f"{key} is required")
                return ""
            return default
        return str(value)

    def optional_text(self, key: str) -> str | None:
        value = self._get(key)
        return None if value is None else str(value)

    def integer(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            if isinstance(value, bool):
                raise TypeError(key)
            return int(value)
        except (TypeError, ValueError):
            self._wrong(key, "a whole number", value)
            return default

    def number(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        try:
            if isinstance(value, bool):
                raise TypeError(key)
            return float(value)
        except (TypeError, ValueError):
            self._wrong(key, "a number", value)
            return default

    def numbers(self, key: str, default: Sequence[float]) -> tuple[float, ...]:
        """A list of numbers (YAML list, or comma-separated text)."""
        value = self._get(key)
        if value is None:
            return tuple(default)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        try:
            if not isinstance(value, list | tuple) or any(isinstance(v, bool) for v in value):
                raise TypeError(key)
            return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            self._wrong(key, "a list of numbers", value)
            return tuple(default)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        self._wrong(key, "true or false", value)
        return default

    def items(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        """Comma-separated text or a list, as stripped non-empty strings."""
        value = self._get(key)
        if value is None:
            if required:
                self.problems.append(f"{key} is required")
            return ()
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            self._wrong(key, "a comma-separated list", value)
            return ()
        found = tuple(str(v).strip() for v in value if str(v).strip())
        if required and not found:
            self.problems.append(f"{key} is required")
        return found

    def mapping(self, key: str) -> dict[str, str]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._wrong(key, "a mapping", value)
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def secret(self, key: str) -> Secret:
        """A required secret: in development its development default if unset; anywhere else
        unset is refused (and so is the development default, by development_defaults)."""
        value = self._get(key)
        if value is None:
            if self.development:
                return Secret(DEVELOPMENT_SECRET)
            self.refusals.append(f"{key} is not set (a secret has no default outside development)")
            return Secret("")
        return Secret(str(value))

    def optional_secret(self, key: str) -> Secret | None:
        value = self._get(key)
        return None if value is None else Secret(str(value))


def build_settings(config: Mapping[str, Any], service: str, load: Callable[[Reader], T]) -> T:
    """``load`` over ``config``; ConfigError (one message naming every bad key) if a value is
    wrong, or, outside development, a secret is missing or a development default is left."""
    reader = Reader(config)
    settings = load(reader)
    refusals = [] if reader.development else development_defaults(config) + reader.refusals
    messages = []
    if refusals:
        messages.append(
            f"{service} refuses to start with development defaults outside development "
            f"(BUURTPEIL_ENV={config.get('ENVIRONMENT', 'production')}): "
            + "; ".join(refusals)
            + ". Set real values (docs/deployment.md, Keys and secrets), or "
            "BUURTPEIL_ENV=development on a developer's machine."
        )
    if reader.problems:
        messages.append(
            f"{service} cannot start, its configuration is wrong: "
            + "; ".join(reader.problems)
            + " (docs/operations.md, Configuration)."
        )
    if messages:
        raise ConfigError(" ".join(messages))
    return settings


_BUILT = "_buurtpeil_settings"  # on the container: what settings_of built, by load


def settings_of(container: Any, load: Callable[[Reader], T]) -> T:
    """The settings ``load`` builds from a container's config: built once per container, at
    the setup of whichever of its providers asks first; logged as critical if refused."""
    # Kept on the container itself: extensions hold it through a weakref.proxy, which can be
    # neither hashed nor weakly referenced again.
    built: dict[Any, Any] | None = getattr(container, _BUILT, None)
    if built is None:
        built = {}
        setattr(container, _BUILT, built)
    if load not in built:
        try:
            built[load] = build_settings(container.config, container.service_name, load)
        except ConfigError as exc:
            log.critical("%s", exc)
            raise
    settings: T = built[load]
    return settings


@dataclass(frozen=True)
class CommonSettings:
    """What services.common's providers read (every service and the gateway)."""

    environment: str
    development: bool
    amqp_uri: str
    metrics_port: int  # 0: none of its own (the gateway serves /metrics on its HTTP port)
    database_pool_size: int
    outbox_relay: bool  # false: this process runs no outbox relay
    outbox_poll_interval: float
    retry_delays: tuple[float, ...]  # seconds before each retry of a failed message
    max_attempts: int | None  # None: as many as retry_delays allows
    dead_letter_retention: float  # seconds a dead letter holding personal data is kept
    intake_batch_size: int
    intake_max_wait: float

    @classmethod
    def load(cls, r: Reader) -> CommonSettings:
        return cls(
            environment=r.environment,
            development=r.development,
            amqp_uri=r.text("AMQP_URI"),
            metrics_port=r.integer("METRICS_PORT", 0),
            database_pool_size=r.integer("DATABASE_POOL_SIZE", 10),
            outbox_relay=r.flag("OUTBOX_RELAY", True),
            outbox_poll_interval=r.number("OUTBOX_POLL_INTERVAL", 0.5),
            retry_delays=r.numbers("RETRY_DELAYS", DEFAULT_RETRY_DELAYS),
            max_attempts=r.integer("MAX_ATTEMPTS", 0) or None,
            dead_letter_retention=r.number("DEAD_LETTER_RETENTION", 0) or DEFAULT_RETENTION,
            intake_batch_size=r.integer("INTAKE_BATCH_SIZE", 500),
            intake_max_wait=r.number("INTAKE_MAX_WAIT", 0.05),
        )


def common_settings(container: Any) -> CommonSettings:
    return settings_of(container, CommonSettings.load)


@dataclass(frozen=True)
class MailSettings:
    """Outgoing e-mail (panel, notify, feedback)."""

    smtp_url: str  # smtp://host:port, smtps://…, ?starttls=1
    mail_from: str
    smtp_user: str | None
    smtp_password: Secret | None

    @classmethod
    def load(cls, r: Reader) -> MailSettings:
        return cls(
            smtp_url=r.text("SMTP_URL"),
            mail_from=r.text("MAIL_FROM"),
            smtp_user=r.optional_text("SMTP_USER"),
            smtp_password=r.optional_secret("SMTP_PASSWORD"),
        )


def read_number(container: Any, key: str, default: float) -> float:
    """One number for a provider whose key is a parameter (a timer's interval, an RPC
    timeout): the default is the provider's own, given where it is declared."""
    return settings_of(container, _NumberLoader(key, default))


def read_text(container: Any, key: str) -> str:
    """One required string for a provider whose key is a parameter (Database's url_key)."""
    return settings_of(container, _TextLoader(key))


# Hashable loaders, so settings_of builds each (key, default) once per container.
@dataclass(frozen=True)
class _NumberLoader:
    key: str
    default: float

    def __call__(self, r: Reader) -> float:
        return r.number(self.key, self.default)


@dataclass(frozen=True)
class _TextLoader:
    key: str

    def __call__(self, r: Reader) -> str:
        return r.text(self.key)


class Settings(DependencyProvider, Generic[T]):
    """Injects the service's settings (``load``'s dataclass), built at setup."""

    def __init__(self, load: Callable[[Reader], T]) -> None:
        self.load = load

    def setup(self) -> None:
        self.value = settings_of(self.container, self.load)

    def get_dependency(self, worker_ctx: Any) -> T:
        return self.value
