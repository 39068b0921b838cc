"""panel's settings, read once at setup (services/common/settings.py); the defaults here are
the only ones in the code (config.yml maps each key to its environment variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common import tokens
from services.common.settings import Reader


@dataclass(frozen=True)
class PanelSettings:
    jwt_private_key_file: str  # Ed25519 key that signs access tokens
    jwt_issuer: str
    jwt_resident_audience: str
    jwt_staff_audience: str
    staff_token_ttl: int  # seconds
    admin_app_url: str  # linked from staff invitations

    @classmethod
    def load(cls, r: Reader) -> PanelSettings:
        return cls(
            jwt_private_key_file=r.text("JWT_PRIVATE_KEY_FILE"),
            jwt_issuer=r.text("JWT_ISSUER"),
            jwt_resident_audience=r.text("JWT_RESIDENT_AUDIENCE"),
            jwt_staff_audience=r.text("JWT_STAFF_AUDIENCE"),
            staff_token_ttl=r.integer("STAFF_TOKEN_TTL", tokens.STAFF_ACCESS_TTL),
            admin_app_url=r.text("ADMIN_APP_URL", "http://127.0.0.1:8000/admin"),
        )
