"""Who is calling: bearer tokens verified locally with the panel's public key(s), and roles.

Every access token names its session (``sid``, a refresh-token family); a session on the
revoked list (``revocations.py``, in memory) is refused like an invalid token: 401.

Staff are always scoped by the municipality in their verified token, never by an id in the
path or body; the platform admin (no municipality) may only use the platform routes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import AuthenticationRequired, Forbidden
from gateway.revocations import RevokedSessions
from gateway.settings import GatewaySettings
from services.common import tokens

ROLE_RANK = {"viewer": 1, "editor": 2, "admin": 3}
PLATFORM_ADMIN = "platform_admin"
# Data entry: keying in paper forms. A role of its own outside the ranks: an invoerder may use
# the routes that need DATA_ENTRY and nothing else (it ranks below viewer); editors and admins
# may key in forms too, a viewer may not.
DATA_ENTRY = "invoerder"
ENTRY_ROLES = (DATA_ENTRY, "editor", "admin")
STAFF_ROLES = (*ROLE_RANK, DATA_ENTRY)  # what a staff account may be given


@dataclass(frozen=True)
class Principal:
    kind: str  # "resident" | "staff"
    subject: str
    municipality_code: str | None
    role: str | None
    claims: dict[str, Any]


class Authenticator:
    """Verifies each token once: a token that verified (signature and claims) is kept with
    its claims, keyed by the exact token string and the kind asked for, in a small LRU of
    ``VERIFIED_MAX`` entries, so the next request with it skips the Ed25519 check and the JSON
    decoding. A kept token is still refused from the moment it expires (or before it is
    valid): its times are checked on every request exactly as verify_token checks them, and
    a failing check verifies it afresh, which gives the refusal. Revocation is not cached: a
    session on the revoked list is refused on every request, kept or not."""

    VERIFIED_MAX = 4096

    def __init__(
        self,
        public_keys: Any,
        *,
        issuer: str,
        resident_audience: str,
        staff_audience: str,
        link_keys: Any = None,
        link_audience: str = "buurtpeil-link",
    ):
        self.public_keys = public_keys
        self.issuer = issuer
        self.audiences = {"resident": resident_audience, "staff": staff_audience}
        self.revoked = RevokedSessions()
        self._verified: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        # notify's keys, for personal links only: never accepted for an access token.
        self.link_keys = link_keys or {}
        self.link_audience = link_audience

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Authenticator:
        keys = [tokens.load_public_key(Path(f).read_text()) for f in settings.jwt_public_key_files]
        link_keys = [
            tokens.load_public_key(Path(f).read_text())
            for f in settings.link_public_key_files
            # make run's seed writes the development pair; without it links are refused
            if not (settings.development and not Path(f).exists())
        ]
        return cls(
            {tokens.key_id(k): k for k in keys},
            issuer=settings.jwt_issuer,
            resident_audience=settings.jwt_resident_audience,
            staff_audience=settings.jwt_staff_audience,
            link_keys={tokens.key_id(k): k for k in link_keys},
            link_audience=settings.link_audience,
        )

    def verify_link(self, token: str, *, now: Any = None) -> dict[str, Any]:
        """The claims of a personal link's token (typ ``poll+link``, signed by notify), or
        TokenError. Its revocation and whether it was answered are notify's (web/link.py)."""
        if not self.link_keys:
            raise tokens.TokenError(tokens.UNKNOWN_KEY)
        claims = tokens.verify_token(
            self.link_keys,
            token,
            typ=tokens.POLL_LINK,
            issuer=self.issuer,
            audience=self.link_audience,
            now=now,
        )
        for name in ("poll", "mun"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise tokens.TokenError(tokens.MISSING_CLAIM)
        # The link's generation (reissued after a revocation): absent on the first link.
        gen = claims.setdefault("gen", 0)
        if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
            raise tokens.TokenError(tokens.MALFORMED)
        return claims

    def authenticate(self, authorization: str | None, kind: str) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationRequired("send an access token: Authorization: Bearer <token>")
        claims = self._claims(authorization[7:].strip(), kind)
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise refused(tokens.MISSING_CLAIM)  # a token without a session cannot be revoked
        if sid in self.revoked:
            raise refused("revoked")
        return Principal(
            kind=kind,
            subject=claims["sub"],
            municipality_code=claims.get("mun"),
            role=claims.get("role"),
            claims=claims,
        )

    def _claims(self, token: str, kind: str) -> dict[str, Any]:
        """The verified claims of ``token`` (a copy: callers may change theirs)."""
        key = (token, kind)
        claims = self._verified.get(key)
        if claims is not None:
            current = time.time()
            leeway = tokens.DEFAULT_LEEWAY
            if claims["exp"] > current - leeway and (
                max(claims["iat"], claims.get("nbf", 0)) <= current + leeway
            ):
                self._verified.move_to_end(key)
                return dict(claims)
            self._verified.pop(key, None)  # verified afresh below: that refuses it
        typ = tokens.RESIDENT_ACCESS if kind == "resident" else tokens.STAFF_ACCESS
        try:
            claims = tokens.verify_token(
                self.public_keys, token, typ=typ, issuer=self.issuer, audience=self.audiences[kind]
            )
        except tokens.TokenError as exc:
            raise refused(exc.reason) from None
        self._verified[key] = claims
        if len(self._verified) > self.VERIFIED_MAX:
            self._verified.popitem(last=False)
        return dict(claims)


def refused(reason: str) -> AuthenticationRequired:
    return AuthenticationRequired(
        f"the access token was refused ({reason})",
        headers={
            "WWW-Authenticate": f'Bearer realm="buurtpeil", '
            f'error="invalid_token", '
            f'error_description="{reason}"'
        },
    )


def authorize(principal: Principal, role: str | None) -> None:
    """Raise Forbidden unless ``principal`` may use a route that needs ``role``."""
    if principal.kind != "staff" or role is None:
        return
    if role == PLATFORM_ADMIN:
        if principal.role != PLATFORM_ADMIN:
            raise Forbidden("only the platform administrator may do this")
        return
    if principal.role == PLATFORM_ADMIN or principal.municipality_code is None:
        raise Forbidden("the platform administrator works on platform routes only")
    if role == DATA_ENTRY:
        if principal.role not in ENTRY_ROLES:
            raise Forbidden(f"only data entry ({DATA_ENTRY}), editors and admins may key in forms")
        return
    if ROLE_RANK.get(principal.role or "", 0) < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role} role; you are {principal.role}")
