"""Who is calling: bearer tokens verified locally with the panel's public key(s), and roles.

Every access token names its session (``sid``, a refresh-token family); a session on the
revoked list (``revocations.py``, in memory) is refused like an invalid token: 401.

Staff are always scoped by the municipality in their verified token, never by an id in the
path or body; the platform admin (no municipality) may only use the platform routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import AuthenticationRequired, Forbidden
from gateway.revocations import RevokedSessions
from gateway.settings import GatewaySettings
from services.common import tokens

ROLE_RANK = {"viewer": 1, "editor": 2, "admin": 3}
PLATFORM_ADMIN = "platform_admin"


@dataclass(frozen=True)
class Principal:
    kind: str  # "resident" | "staff"
    subject: str
    municipality_code: str | None
    role: str | None
    claims: dict[str, Any]


class Authenticator:
    def __init__(
        self, public_keys: Any, *, issuer: str, resident_audience: str, staff_audience: str
    ):
        self.public_keys = public_keys
        self.issuer = issuer
        self.audiences = {"resident": resident_audience, "staff": staff_audience}
        self.revoked = RevokedSessions()

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Authenticator:
        keys = [tokens.load_public_key(Path(f).read_text()) for f in settings.jwt_public_key_files]
        return cls(
            {tokens.key_id(k): k for k in keys},
            issuer=settings.jwt_issuer,
            resident_audience=settings.jwt_resident_audience,
            staff_audience=settings.jwt_staff_audience,
        )

    def authenticate(self, authorization: str | None, kind: str) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationRequired("send an access token: Authorization: Bearer <token>")
        typ = tokens.RESIDENT_ACCESS if kind == "resident" else tokens.STAFF_ACCESS
        try:
            claims = tokens.verify_token(
                self.public_keys,
                authorization[7:].strip(),
                typ=typ,
                issuer=self.issuer,
                audience=self.audiences[kind],
            )
        except tokens.TokenError as exc:
            raise refused(exc.reason) from None
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
    if ROLE_RANK.get(principal.role or "", 0) < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role} role; you are {principal.role}")
