"""Front-end files of other projects, vendored: ``npm pack`` of exact versions, the files we
serve copied into ``web/static/vendor/`` (axe-core, for the browser tests only, into
``tests/browser/vendor/``), each with its licence, and a manifest (``web/vendor.json``) with
the package's registry integrity, its licence and the sha256 of every file we keep. A unit test
checks the files against the manifest; nothing is ever loaded from a CDN.

    python -m web.vendoring            (make vendor) fetch, copy, rewrite the manifest

``@utrecht/design-tokens`` is deliberately absent (its licence is proprietary to Gemeente
Utrecht). The theme model is derived from the example theme of
``@nl-design-system-unstable/voorbeeld-design-tokens``: only its ``--utrecht-*`` component
tokens and the ``--basis-*`` tokens they rest on, plus its palette, under our own class;
``web/theme.py`` then overrides the ``--basis-*`` colours per municipality.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATIC_VENDOR = ROOT / "web" / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "browser" / "vendor"
MANIFEST = ROOT / "web" / "vendor.json"
THEME_CLASS = "bp-theme"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str  # SPDX, checked against the package's own package.json
    files: dict[str, str]  # path in the package → path under the destination folder
    destination: Path = STATIC_VENDOR
    folder: str = ""  # below destination
    derive: tuple[str, ...] = field(default=())  # names of derived files (see DERIVED)


# htmx: the 2.0 line (2.0.11), not 4.0 — 4.0.x is weeks old with breaking changes
# (fetch-based, explicit inheritance); 2.0 has had a year of fixes and is what we test with.
PACKAGES = [
    Package(
        "htmx.org",
        "2.0.11",
        "0BSD",
        {"dist/htmx.min.js": "htmx.min.js", "LICENSE": "LICENSE"},
        folder="htmx",
    ),
    Package(
        "@utrecht/component-library-css",
        "9.0.4",
        "EUPL-1.2",
        {"dist/index.css": "index.css", "LICENSE.md": "LICENSE.md"},
        folder="utrecht",
    ),
    Package(
        "@nl-design-system-unstable/voorbeeld-design-tokens",
        "7.4.1",
        "EUPL-1.2",
        {"LICENSE.md": "LICENSE.md"},
        folder="voorbeeld",
        derive=("theme-model.css",),
    ),
    Package(
        "leaflet",
        "1.9.4",
        "BSD-2-Clause",
        {"dist/leaflet.js": "leaflet.js", "dist/leaflet.css": "leaflet.css", "LICENSE": "LICENSE"},
        folder="leaflet",
    ),
    Package(
        "axe-core",
        "4.14.1",
        "MPL-2.0",
        {"axe.min.js": "axe.min.js", "LICENSE": "LICENSE"},
        destination=TEST_VENDOR,
    ),
]

_DECLARATION = re.compile(r"^\s*(--[a-z0-9-]+)\s*:\s*(.+?);\s*$", re.MULTILINE)


def theme_model(theme_css: str) -> str:
    """The voorbeeld theme reduced to what the Utrecht component CSS reads: ``--utrecht-*``
    tokens, the ``--basis-*`` tokens and the ``--voorbeeld-*`` palette they refer to."""
    kept = [
        f"  {name}: {value};"
        for name, value in _DECLARATION.findall(theme_css)
        if name.startswith(("--utrecht-", "--basis-", "--voorbeeld-"))
    ]
    return (
        "/* Derived by web/vendoring.py from @nl-design-system-unstable/voorbeeld-design-tokens"
        " (EUPL-1.2), dist/theme.css: its --utrecht-*, --basis-* and --voorbeeld-* tokens. */\n"
        f".{THEME_CLASS} {{\n" + "\n".join(kept) + "\n}\n"
    )


DERIVED = {"theme-model.css": ("dist/theme.css", theme_model)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm_pack(spec: str, into: Path) -> dict[str, str]:
    out = subprocess.run(  # noqa: S603 - our own fixed package specs
        ["npm", "pack", "--json", "--silent", spec],  # noqa: S607 - npm from PATH
        cwd=into,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)[0]


def vendor(package: Package, work: Path) -> dict[str, Any]:
    packed = npm_pack(f"{package.name}@{package.version}", work)
    unpacked = work / packed["filename"].removesuffix(".tgz")
    with tarfile.open(work / packed["filename"]) as tar:
        tar.extractall(unpacked, filter="data")
    source = unpacked / "package"
    meta = json.loads((source / "package.json").read_text())
    if meta.get("license") != package.licence or meta.get("version") != package.version:
        raise SystemExit(
            f"{package.name}: expected {package.version} under {package.licence}, "
            f"the registry has {meta.get('version')} under {meta.get('license')}"
        )
    target = package.destination / package.folder
    target.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    for inside, name in package.files.items():
        (target / name).write_bytes((source / inside).read_bytes())
        files.append({"from": inside, "path": str((target / name).relative_to(ROOT))})
    for name in package.derive:
        inside, make = DERIVED[name]
        (target / name).write_text(make((source / inside).read_text()))
        files.append(
            {"from": inside, "derived": True, "path": str((target / name).relative_to(ROOT))}
        )
    for entry in files:
        entry["sha256"] = sha256(ROOT / entry["path"])
    return {
        "name": package.name,
        "version": package.version,
        "license": package.licence,
        "integrity": packed["integrity"],
        "files": files,
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        entries = [vendor(p, Path(tmp)) for p in PACKAGES]
    MANIFEST.write_text(json.dumps({"packages": entries}, indent=2) + "\n")
    for e in entries:
        print(f"{e['name']}@{e['version']} ({e['license']}): {len(e['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
