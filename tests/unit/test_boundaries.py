"""The gateway loads no service's modules, so it registers no service's metrics either
(import-linter checks the imports in `make lint`; this checks what a running import loads)."""

import ast
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
import gateway.service
from prometheus_client import REGISTRY
print(sorted(m for m in sys.modules
             if m.startswith("services.") and not m.startswith("services.common")))
print(sorted(n for n in REGISTRY._names_to_collectors
             if n.startswith(("buurtpeil_responses", "buurtpeil_aggregation"))))
"""


def test_importing_the_gateway_loads_no_service_and_none_of_their_metrics():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    modules, metrics = done.stdout.strip().splitlines()[-2:]
    assert modules == "[]"
    assert metrics == "[]"


SERVICES = Path(__file__).resolve().parents[2] / "services"
QUERIES = {"execute", "scalars", "scalar", "query", "get"}
QUERY_BUILDERS = ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.dialects.postgresql")


def test_no_service_module_builds_queries_itself():
    """Issue 12, item 3: a service's entrypoints call projection and domain modules; the SQL
    lives there. service.py imports no query builder and runs no statement on a session."""
    found = []
    for path in sorted(SERVICES.glob("*/service.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path.parent.name, a.name) for a in node.names if a.name == "sqlalchemy"]
            elif isinstance(node, ast.ImportFrom) and node.module in (
                "sqlalchemy",
                "sqlalchemy.sql",
            ):
                found.append((path.parent.name, f"from {node.module} import"))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERIES
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("s", "session", "conn", "connection")
            ):
                found.append((path.parent.name, f"{node.func.value.id}.{node.func.attr}(…)"))
    assert len(list(SERVICES.glob("*/service.py"))) == 5
    assert found == []
