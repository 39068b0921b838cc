"""Which Web Push endpoints notify will send to.

A subscription's endpoint comes from the resident's browser, through the app — that is, from
anyone holding a resident token. Sent to as it is, it would make notify POST to any URL it can
reach (a blind SSRF into our own network), and a host that answers slowly or endlessly would
hold up the batch it is in. So an endpoint must be ``https`` (port 443) on a known push
service's host: ``PUSH_ENDPOINT_HOSTS``, exact names or ``*.`` for any subdomain. The defaults
are the push services of the browsers residents use:

- ``fcm.googleapis.com`` — Chrome, Chromium-based browsers, Android;
- ``updates.push.services.mozilla.com`` — Firefox;
- ``*.notify.windows.com`` — Edge (Windows Push Notification Services, e.g. ``wns2-…``);
- ``*.push.apple.com`` — Safari on macOS and iOS (``web.push.apple.com``; Apple asks to allow
  its whole domain).

In development (``BUURTPEIL_ENV=development`` only) ``PUSH_DEVELOPMENT_ORIGINS`` adds origins
of a local push service, http allowed, ``:*`` for any port (the fake of ``make run`` and the
tests). Checked when a device is registered (422 naming ``endpoint``) and again before each
send (for subscriptions stored before a host was removed from the list).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.notify.windows.com",
    "*.push.apple.com",
)


class PushEndpointPolicy:
    def __init__(
        self, hosts: Iterable[str] = DEFAULT_HOSTS, development_origins: Iterable[str] = ()
    ):
        self.hosts = [h.strip().lower().rstrip(".") for h in hosts if h.strip()]
        self.development_origins = [o.strip().lower().rstrip("/") for o in development_origins]

    def problem(self, endpoint: str) -> str | None:
        """Why notify will not send to ``endpoint``, or None if it will."""
        try:
            parts = urlsplit(str(endpoint))
            port = parts.port
        except ValueError:
            return "not a valid URL"
        host = (parts.hostname or "").rstrip(".")
        scheme = parts.scheme.lower()
        if self._development_origin(scheme, host, port):
            return None
        if scheme != "https":
            return "a push endpoint must be an https URL"
        if parts.username is not None or parts.password is not None:
            return "a push endpoint carries no user name or password"
        if port not in (None, 443):
            return "a push endpoint uses the https port (443)"
        if not any(self._matches(pattern, host) for pattern in self.hosts):
            return f"{host or 'this host'} is not a known push service"
        return None

    @staticmethod
    def _matches(pattern: str, host: str) -> bool:
        if pattern.startswith("*."):
            return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
        return host == pattern

    def _development_origin(self, scheme: str, host: str, port: int | None) -> bool:
        for origin in self.development_origins:
            o_scheme, _, rest = origin.partition("://")
            o_host, _, o_port = rest.rpartition(":") if ":" in rest else (rest, "", "")
            if o_scheme != scheme or o_host != host:
                continue
            if o_port == "*" or (o_port.isdigit() and port == int(o_port)):
                return True
            if not o_port and port is None:
                return True
        return False
