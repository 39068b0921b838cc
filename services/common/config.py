"""Service configuration: one ``config.yml`` per service, with ``${VAR:default}`` substitution.

The same syntax nameko's own ``--config`` loader understands, so a service's config.yml works
both for ``nameko run`` and for our scripts (migrations, relay tools, tests). Nothing deeper in
the code reads the environment: it receives the loaded dict.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class ConfigError(RuntimeError):
    """A required variable is unset, or the file is not valid YAML."""


def substitute(text: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is required by the configuration")
        return default

    return _VAR.sub(replace, text)


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    raw = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(substitute(raw, environ))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return data or {}


def service_config_path(service: str) -> Path:
    """The config.yml of a service package (``polls`` → services/polls/config.yml)."""
    root = Path(__file__).resolve().parents[2]
    if service == "gateway":
        return root / "gateway" / "config.yml"
    return root / "services" / service / "config.yml"


def load_service_config(service: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    return load_config(service_config_path(service), environ)
