"""docs/api.md lists every route the gateway serves (and no other)."""

import re
from pathlib import Path

from gateway.routes import ROUTES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_route_is_in_the_api_doc():
    documented = set(re.findall(r"^\| (GET|POST|PATCH|PUT|DELETE) \| `([^`]+)` \|", DOC, re.M))
    assert documented == {(r.method, r.openapi_path) for r in ROUTES}
