"""The gateway loads no service's modules, so it registers no service's metrics either
(import-linter checks the imports in `make lint`; this checks what a running import loads)."""

import subprocess
import sys

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
