"""The deployment files in deploy/: every manifest parses; every Buurtpeil process of
deploy/Procfile runs in compose and on Kubernetes (with probes and resources) and is scraped
by Prometheus; the alert rules and the dashboard use metrics the code really exports.

Docker is not needed. promtool (Debian package ``prometheus``) and kubectl (or kustomize) are
used when installed; without them those checks are skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_BASE = K8S / "base"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
OPERATIONS = ROOT / "docs" / "operations.md"

# Metrics that alerts.yml and the dashboard already use but whose code comes with a later
# issue. When the code exports one, remove it here (test_arrives_later_is_still_later says so).
ARRIVES_LATER: dict[str, str] = {}  # metric name → the issue that brings its code
# Runbook sections that alerts link to and docs/operations.md does not have yet.
RUNBOOKS_TO_WRITE: set[str] = set()  # anchors an alert may name before its runbook exists
# Metrics of systems outside Buurtpeil: RabbitMQ's prometheus plugin.
EXTERNAL_PREFIXES = ("rabbitmq_",)
# What the dashboard must show (base names, as registered in the code).
DASHBOARD_METRICS = {
    "buurtpeil_entrypoint_calls_total",
    "buurtpeil_entrypoint_duration_seconds",
    "buurtpeil_http_responses_total",
    "buurtpeil_outbox_pending",
    "buurtpeil_outbox_oldest_pending_seconds",
    "buurtpeil_events_consumed_total",
    "buurtpeil_dead_letters_total",
    "buurtpeil_delivery_dead_letters_total",
    "buurtpeil_deliveries_total",
    "buurtpeil_delivery_lag_seconds",
    "buurtpeil_fanout_write_seconds",
    "buurtpeil_responses_total",
    "buurtpeil_aggregation_lag_seconds",
    "buurtpeil_feedback_overdue_polls",
    "buurtpeil_feedback_share_published",
    "buurtpeil_feedback_median_days_to_publish",
    "buurtpeil_feedback_share_useful",
}
RABBITMQ_PROMETHEUS_PORT = 15692


# --- the processes ------------------------------------------------------------------------------


def procfile() -> dict[str, list[str]]:
    """name → command of every Buurtpeil process in deploy/Procfile (not the development fakes)."""
    entries = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        argv = shlex.split(command)
        if argv[:2] == ["nameko", "run"]:
            entries[name.strip()] = argv
    return entries


SERVICES = sorted(procfile())


def config_path(service: str) -> Path:
    return ROOT / ("gateway" if service == "gateway" else f"services/{service}") / "config.yml"


@cache
def config_vars(service: str) -> frozenset[str]:
    """The environment variables a service's config.yml reads."""
    return frozenset(re.findall(r"\$\{(\w+)", config_path(service).read_text()))


def all_config_vars() -> set[str]:
    return set().union(*(config_vars(s) for s in SERVICES))


def metrics_port(service: str) -> int:
    """Where Prometheus finds the service: METRICS_PORT, or the gateway's HTTP port."""
    config = load_config(config_path(service), environ={})
    port = int(config.get("METRICS_PORT") or 0)
    if port:
        return port
    return int(str(config["WEB_SERVER_ADDRESS"]).rsplit(":", 1)[1])


def databases() -> list[str]:
    """Services with migrations (as services.common.migrate finds them)."""
    return sorted(p.parent.parent.name for p in (ROOT / "services").glob("*/migrations/env.py"))


def test_procfile_names_the_services_we_deploy() -> None:
    assert set(SERVICES) >= {"polls", "panel", "notify", "gateway"}
    for service in SERVICES:
        assert f"--config {config_path(service).relative_to(ROOT)}" in shlex.join(
            procfile()[service]
        )


# --- every file parses --------------------------------------------------------------------------


def deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in suffixes and "keys" not in p.parts)


@pytest.mark.parametrize(
    "path", deploy_files(".yml", ".yaml"), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_yaml_parses(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(d, dict) for d in documents)


@pytest.mark.parametrize("path", deploy_files(".json"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_json_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


# --- the image ----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_installs_the_lock_then_the_project() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [arg for op, arg in steps if op == "RUN"]
    lock = next(
        i for i, r in enumerate(runs) if re.search(r"pip install .*-r requirements\.lock", r)
    )
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install .*--no-deps", r))
    assert lock < project
    copies = [arg.split() for op, arg in steps if op == "COPY"]
    assert all((ROOT / src).exists() for *sources, _ in copies for src in sources)
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    assert dict(steps)["CMD"] and json.loads(dict(steps)["CMD"]) == procfile()["gateway"]


def test_dockerignore_keeps_keys_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".keys", "deploy/keys"} <= ignored


# --- compose ------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_the_service(service: str) -> None:
    spec = compose()["services"][service]
    assert spec["command"] == procfile()[service]
    assert set(spec["environment"]) <= config_vars(service), "a variable its config.yml ignores"
    healthcheck = " ".join(spec["healthcheck"]["test"])
    assert f":{metrics_port(service)}/" in healthcheck
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "./keys:/keys:ro" in spec["volumes"]


def test_compose_infrastructure() -> None:
    services = compose()["services"]
    for name in (
        "rabbitmq",
        "postgres",
        "redis",
        "migrate",
        "keys",
        "prometheus",
        "grafana",
        "mailpit",
    ):
        assert name in services
    for name, spec in services.items():
        if name not in {"migrate", "keys"}:
            assert "healthcheck" in spec, f"compose service {name} has no healthcheck"
    assert services["migrate"]["command"] == [
        "python",
        "-m",
        "services.common.migrate",
        "--create",
    ]
    assert set(services["migrate"]["environment"]) <= all_config_vars()
    for name in ("panel", "notify"):
        assert services[name]["environment"]["SMTP_URL"] == "smtp://mailpit:1025"
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    assert services["postgres"]["image"].startswith("postgres:15")


def test_compose_databases_match_the_services() -> None:
    init = (DEPLOY / "postgres" / "init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", init))
    assert {f"buurtpeil_{s}" for s in [*databases(), "responses", "feedback"]} <= created
    env = {**compose()["services"]["migrate"]["environment"]}
    for service in databases():
        url = env[f"{service.upper()}_DATABASE_URL"]
        default = load_config(config_path(service), environ={})["DATABASE_URL"]
        assert url.rsplit("/", 1)[1] == default.rsplit("/", 1)[1]
        assert "@postgres:5432/" in url


def test_compose_mounts_exist() -> None:
    for name, spec in compose()["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and source != "./keys":
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


# --- Kubernetes ---------------------------------------------------------------------------------


@cache
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())


@cache
def k8s_objects() -> tuple[dict[str, Any], ...]:
    objects: list[dict[str, Any]] = []
    for name in kustomization()["resources"]:
        objects += [d for d in yaml.safe_load_all((K8S_BASE / name).read_text()) if d]
    return tuple(objects)


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} in deploy/k8s/base, found {len(found)}"
    return found[0]


def configmap_keys() -> set[str]:
    (generator,) = kustomization()["configMapGenerator"]
    keys = set()
    for env_file in generator["envs"]:
        for line in (K8S_BASE / env_file).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                keys.add(line.split("=", 1)[0])
    return keys


def test_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    assert all((K8S_BASE / name).is_file() for name in listed)
    files = {p.name for p in K8S_BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == listed


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    action = probe.get("httpGet") or probe.get("tcpSocket")
    assert action, "probes are HTTP GET or TCP on a port"
    port = action["port"]
    if isinstance(port, str):
        (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(port)


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment(service: str) -> None:
    deployment = k8s("Deployment", service)
    selector = deployment["spec"]["selector"]["matchLabels"]
    template = deployment["spec"]["template"]
    assert selector.items() <= template["metadata"]["labels"].items()
    (container,) = [c for c in template["spec"]["containers"] if c["name"] == service]
    assert container["command"] == procfile()[service]

    for name in ("readinessProbe", "livenessProbe"):
        assert name in container, f"{service} has no {name}"
        assert probe_port(container, container[name]) == metrics_port(service), name
    if service == "gateway":
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), bound

    assert {e["name"] for e in container.get("env", [])} <= config_vars(service)
    assert {"name": "buurtpeil-config"} in [
        e["configMapRef"] for e in container["envFrom"] if "configMapRef" in e
    ]
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True

    ports = [p["port"] for p in k8s("Service", service)["spec"]["ports"]]
    assert metrics_port(service) in ports
    pdb = k8s("PodDisruptionBudget", service)
    assert pdb["spec"]["selector"]["matchLabels"] == selector


def test_k8s_configmap_holds_only_known_settings() -> None:
    assert configmap_keys() <= all_config_vars()
    for service in SERVICES:
        if service != "gateway":
            assert f"{service.upper()}_METRICS_PORT" in configmap_keys()


def test_k8s_database_urls_come_from_the_secret() -> None:
    for service in databases():
        if service not in SERVICES:
            continue
        (container,) = k8s("Deployment", service)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        ref = env[f"{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "buurtpeil-databases", "key": f"{service.upper()}_DATABASE_URL"}


def test_k8s_migration_job() -> None:
    (container,) = k8s("Job", "migrate")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.common.migrate", "--create"]
    assert {"secretRef": {"name": "buurtpeil-databases"}} in container["envFrom"]


# The consumers KEDA scales on the depth of their work queue: service → where the queue is named.
KEDA_SCALED = {
    "notify": ("services/notify/dispatch.py", "WORK_QUEUE"),
    "responses": ("services/common/intake.py", "INTAKE_QUEUE"),
}


@pytest.mark.parametrize("service", sorted(KEDA_SCALED))
def test_keda_scales_the_consumer_on_its_work_queue(service: str) -> None:
    source, constant = KEDA_SCALED[service]
    (queue,) = re.findall(rf'^{constant} = "([^"]+)"', (ROOT / source).read_text(), re.M)
    scaled = k8s("ScaledObject", service)
    assert scaled["spec"]["scaleTargetRef"]["name"] == service
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == queue
    assert all(isinstance(v, str) for v in trigger["metadata"].values())
    k8s("TriggerAuthentication", trigger["authenticationRef"]["name"])
    # kubectl apply would reset a replica count in the Deployment on every rollout.
    assert "replicas" not in k8s("Deployment", service)["spec"]


def kustomize_command(path: Path) -> list[str]:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(path)]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(path)]
    pytest.skip("neither kubectl nor kustomize is installed: kustomize builds not checked")


@pytest.mark.parametrize("path", [K8S_BASE, K8S / "overlays" / "example"], ids=["base", "example"])
def test_kustomize_builds(path: Path) -> None:
    result = subprocess.run(kustomize_command(path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(SERVICES) <= set(deployments)
    for service in SERVICES:  # ours; redis.yaml is Redis's own image and settings
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        assert refs == [configmap["metadata"]["name"]]  # the generated, hashed name


# --- Prometheus ---------------------------------------------------------------------------------


@cache
def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())


def scrape_ports(job: dict[str, Any]) -> set[int]:
    ports = {sd["port"] for sd in job.get("dns_sd_configs", [])}
    for static in job.get("static_configs", []):
        ports |= {int(target.rsplit(":", 1)[1]) for target in static["targets"]}
    return ports


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_scrapes_the_service(service: str) -> None:
    jobs = {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}
    job = jobs[service]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert scrape_ports(job) == {metrics_port(service)}


def test_prometheus_scrapes_rabbitmq_and_loads_the_rules() -> None:
    jobs = prometheus_config()["scrape_configs"]
    assert any(RABBITMQ_PROMETHEUS_PORT in scrape_ports(job) for job in jobs)
    for rule_file in prometheus_config()["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()


# --- metric names -------------------------------------------------------------------------------

PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana query) selects."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def test_metric_names_are_found_in_expressions() -> None:
    expr = (
        'sum by (service, le) (rate(a_bucket{outcome!="x", service=~"$service"}[$__rate_interval]))'
        " / on (service) b or c unless d offset 15m > 0.01"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}


def base_names(name: str) -> set[str]:
    names = {name}
    for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
        if name.endswith(suffix):
            names.add(name.removesuffix(suffix))
    return names


@cache
def source_text() -> str:
    files = [*(ROOT / "services").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def in_code(name: str) -> bool:
    """Registered in the code: the name (or its base name) as a string literal."""
    return any(re.search(rf"[\"']{re.escape(n)}[\"']", source_text()) for n in base_names(name))


def unknown_metrics(exprs: list[str]) -> set[str]:
    unknown = set()
    for expr in exprs:
        for name in metric_names(expr):
            if name.startswith(EXTERNAL_PREFIXES) or base_names(name) & set(ARRIVES_LATER):
                continue
            if not in_code(name):
                unknown.add(name)
    return unknown


# --- alert rules --------------------------------------------------------------------------------


@cache
def alert_rules() -> tuple[dict[str, Any], ...]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return tuple(rule for group in groups for rule in group["rules"] if "alert" in rule)


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", path.read_text(), re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_every_alert_has_a_runbook() -> None:
    anchors = markdown_anchors(OPERATIONS)
    for rule in alert_rules():
        url = rule.get("annotations", {}).get("runbook_url")
        assert url, f"{rule['alert']} has no runbook_url"
        page, _, anchor = url.partition("#")
        assert page.endswith("docs/operations.md"), url
        assert anchor in anchors or anchor in RUNBOOKS_TO_WRITE, f"{url}: no such heading"


def test_the_alerts_we_promised() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    used = set().union(*(base_names(name) for name in used))
    assert used >= {
        "buurtpeil_dead_letters_total",
        "buurtpeil_delivery_dead_letters_total",
        "buurtpeil_outbox_oldest_pending_seconds",
        "buurtpeil_delivery_lag_seconds",
        "buurtpeil_http_responses_total",
        "buurtpeil_aggregation_lag_seconds",
        "buurtpeil_feedback_overdue_polls",
    }


def test_alert_metrics_exist_in_the_code() -> None:
    assert unknown_metrics([rule["expr"] for rule in alert_rules()]) == set()


def test_arrives_later_is_still_later() -> None:
    for name, issue in ARRIVES_LATER.items():
        assert not in_code(name), (
            f"{name} ({issue}) is in the code now: remove it from ARRIVES_LATER in this test and"
            " the 'metric arrives with' comment from deploy/prometheus/alerts.yml"
        )


# --- Grafana ------------------------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "buurtpeil.json").read_text())


def dashboard_panels() -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard()["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return [p for p in panels if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p["targets"]]


def test_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    for panel in dashboard_panels():
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel


def test_dashboard_shows_our_metrics() -> None:
    assert unknown_metrics(dashboard_exprs()) == set()
    shown = set().union(*(metric_names(e) for e in dashboard_exprs()))
    shown = set().union(*(base_names(name) for name in shown))
    assert shown >= DASHBOARD_METRICS
    assert len({p["id"] for p in dashboard()["panels"]}) == len(dashboard()["panels"])


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "buurtpeil.yml").read_text()
    )["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]


# --- promtool -----------------------------------------------------------------------------------


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    if executable is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run(
        [executable, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def test_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_alert_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$service", ".*"),
        }
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
