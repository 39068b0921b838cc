"""Development seed for ``make run``: signing keys, gemeente Utrecht with its real CBS areas,
a platform administrator and a Utrecht administrator. Idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from services.common import tokens
from services.common.config import load_service_config
from services.notify import webpush
from services.panel import manage
from services.panel.areas import DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_ADMIN = os.environ.get("BUURTPEIL_PLATFORM_ADMIN", "beheer@buurtpeil.localhost")
ADMIN_EMAIL = os.environ.get("BUURTPEIL_ADMIN_EMAIL", "admin@utrecht.localhost")
# Development only; set BUURTPEIL_ADMIN_PASSWORD for anything shared.
ADMIN_PASSWORD = os.environ.get("BUURTPEIL_ADMIN_PASSWORD", "domtoren-oudegracht-1382")


def ensure_keys() -> str:
    """Development keys, made once: the panel's token signing key (and the gateway's public
    half), notify's link signing key (and its public half) and notify's VAPID key."""
    private = ROOT / load_service_config("panel")["JWT_PRIVATE_KEY_FILE"]
    public = ROOT / load_service_config("gateway")["JWT_PUBLIC_KEY_FILE"]
    vapid = ROOT / load_service_config("notify")["VAPID_PRIVATE_KEY_FILE"]
    link_private = ROOT / load_service_config("notify")["LINK_PRIVATE_KEY_FILE"]
    link_public = ROOT / load_service_config("gateway")["LINK_PUBLIC_KEY_FILE"]
    made = []
    if not (private.exists() and public.exists()):
        private_pem, public_pem = tokens.generate_keypair()
        write_secret(private, private_pem)
        public.parent.mkdir(parents=True, exist_ok=True)
        public.write_text(public_pem)
        made.append("token signing")
    if not (link_private.exists() and link_public.exists()):
        # notify's own pair: it signs the personal links in e-mails, the gateway verifies.
        private_pem, public_pem = tokens.generate_keypair()
        write_secret(link_private, private_pem)
        link_public.write_text(public_pem)
        made.append("personal links")
    if not vapid.exists():
        write_secret(vapid, webpush.generate_vapid_key())
        made.append("VAPID")
    return f"keys written to {private.parent}: {', '.join(made)}" if made else "keys present"


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def seed() -> list[str]:
    done = [ensure_keys()]
    for argv in (
        ["create-platform-admin", "--email", PLATFORM_ADMIN, "--password", ADMIN_PASSWORD],
        ["create-municipality", "--code", "GM0344", "--name", "Utrecht"],
        [
            "import-areas",
            "--municipality",
            "GM0344",
            "--kwb",
            str(DATA_DIR / "utrecht_GM0344_kwb2024_areas.csv"),
            "--geojson",
            str(DATA_DIR / "utrecht_GM0344_buurten_2024.geojson"),
        ],
        [
            "create-staff",
            "--municipality",
            "GM0344",
            "--email",
            ADMIN_EMAIL,
            "--role",
            "admin",
            "--password",
            ADMIN_PASSWORD,
        ],
    ):
        if manage.main(argv) != 0:
            raise RuntimeError(f"seeding failed at {argv[0]}")
        done.append(argv[0])
    return done
