"""Development seed for ``make run``: signing keys, gemeente Utrecht with its real CBS areas,
a platform administrator and a Utrecht administrator. Idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from services.common import tokens
from services.common.config import load_service_config
from services.panel import manage
from services.panel.areas import DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_ADMIN = os.environ.get("BUURTPEIL_PLATFORM_ADMIN", "beheer@buurtpeil.localhost")
ADMIN_EMAIL = os.environ.get("BUURTPEIL_ADMIN_EMAIL", "admin@utrecht.localhost")
# Development only; set BUURTPEIL_ADMIN_PASSWORD for anything shared.
ADMIN_PASSWORD = os.environ.get("BUURTPEIL_ADMIN_PASSWORD", "domtoren-oudegracht-1382")


def ensure_keys() -> str:
    """The panel's signing key and the gateway's public key, made once for development."""
    private = ROOT / load_service_config("panel")["JWT_PRIVATE_KEY_FILE"]
    public = ROOT / load_service_config("gateway")["JWT_PUBLIC_KEY_FILE"]
    if private.exists() and public.exists():
        return "signing keys present"
    private.parent.mkdir(parents=True, exist_ok=True)
    public.parent.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = tokens.generate_keypair()
    private.write_text(private_pem)
    private.chmod(0o600)
    public.write_text(public_pem)
    return f"signing keys written to {private.parent}"


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
