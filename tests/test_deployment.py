"""Static checks of the deployment files: compose, Dockerfile, Prometheus and Grafana configuration.

No Docker engine runs in the test environment, so these tests read the files instead of starting
them, and check that they agree with each other and with the metrics podium exports.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import require_program

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "config" / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = ROOT / "config" / "prometheus" / "rules.yml"
PROMETHEUS_RULE_TESTS = ROOT / "config" / "prometheus" / "rules_test.yml"
METRIC_CATALOGUE = ROOT / "docs" / "metrics.md"
GRAFANA_DATASOURCES = (
    ROOT / "config" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
)
GRAFANA_PROVIDERS = ROOT / "config" / "grafana" / "provisioning" / "dashboards" / "podium.yml"
GRAFANA_DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "podium-overview.json"

REQUIRED_SERVICES = frozenset({"redis", "podium-1", "podium-2", "prometheus", "grafana", "coturn"})
PODIUM_JOB = "podium"

# Every metric name the shipped dashboard and alert rules may use. A later test checks this list
# against the live /metrics of a running node, so a renamed metric fails a test instead of
# silently emptying a dashboard panel.
KNOWN_METRICS: frozenset[str] = frozenset(
    {
        "podium_signaling_connections",
        "podium_presence_online_participants",
        "podium_signaling_joins_total",
        "podium_signaling_events_delivered_total",
        "podium_signaling_slow_disconnects_total",
        "podium_signaling_fanout_latency_seconds",
        "podium_event_loop_lag_seconds",
        "podium_store_errors_total",
        "podium_session_state",
        "podium_stream_channel_live",
        "podium_stream_packets_lost_total",
        "podium_stream_jitter_seconds",
        "podium_stream_refusals_total",
        "podium_floor_requests_total",
        "podium_floor_grants_total",
        "podium_floor_queue_length",
        "podium_floor_speaking_seconds_total",
        "podium_rtc_messages_total",
        "podium_media_sessions_active",
        "podium_grant_to_media_seconds",
        "podium_stream_listeners",
        "podium_stream_publishers",
        "podium_stream_inbound_bits_per_second",
        "podium_stream_round_trip_seconds",
        "podium_stream_offline_transitions_total",
        "podium_presence_unique_participants",
        "podium_signaling_frames_rejected_total",
        "podium_qa_questions",
        "podium_qa_queue_depth",
        "podium_qa_decision_seconds",
        "podium_qa_moderator_actions_total",
        "podium_qa_votes_total",
    }
)

METRIC_NAME = re.compile(r"podium_[a-z_]+")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


# --- loading -------------------------------------------------------------------------------------


def _mapping(value: object, what: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{what} should be a mapping, got {type(value).__name__}"
    return value


def _sequence(value: object, what: str) -> list[Any]:
    assert isinstance(value, list), f"{what} should be a list, got {type(value).__name__}"
    return value


def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        return _mapping(yaml.safe_load(file), str(path.relative_to(ROOT)))


def _services() -> dict[str, dict[str, Any]]:
    services = _mapping(_load_yaml(COMPOSE_FILE).get("services"), "services")
    return {name: _mapping(service, name) for name, service in services.items()}


def _podium_services() -> dict[str, dict[str, Any]]:
    """The services built from the repository's Dockerfile, i.e. the podium nodes."""
    nodes = {}
    for name, service in _services().items():
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else _mapping(build, f"{name}.build")
        context = ROOT / str(build.get("context", "."))
        if (context / str(build.get("dockerfile", "Dockerfile"))).resolve() == DOCKERFILE:
            nodes[name] = service
    return nodes


def _environment(name: str, service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {
        str(key): str(value) for key, value in _mapping(environment, f"{name}.environment").items()
    }


def _published_ports(name: str, service: dict[str, Any]) -> list[tuple[int, int, str]]:
    """(host port, container port, protocol) for each port a service publishes, ranges expanded."""
    published = []
    for entry in _sequence(service.get("ports", []), f"{name}.ports"):
        if isinstance(entry, dict):
            target = int(entry["target"])
            published.append((int(entry["published"]), target, str(entry.get("protocol", "tcp"))))
            continue
        spec, _, protocol = str(entry).partition("/")
        host_spec, container_spec = spec.rsplit(":", 1)
        host_spec = host_spec.rsplit(":", 1)[-1]  # drop an optional host IP
        host_ports, container_ports = _port_range(host_spec), _port_range(container_spec)
        assert len(host_ports) == len(container_ports), f"{name}: uneven port range in {entry!r}"
        published.extend(
            (host, container, protocol or "tcp")
            for host, container in zip(host_ports, container_ports, strict=True)
        )
    return published


def _port_range(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _bind_mount_sources(name: str, service: dict[str, Any]) -> list[str]:
    sources = []
    for entry in _sequence(service.get("volumes", []), f"{name}.volumes"):
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                sources.append(str(entry["source"]))
            continue
        source = str(entry).split(":", 1)[0]
        if source.startswith((".", "/", "~")):
            sources.append(source)
    return sources


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _scrape_targets(job_name: str) -> tuple[dict[str, Any], set[str]]:
    config = _load_yaml(PROMETHEUS_CONFIG)
    jobs = [
        _mapping(job, "scrape config")
        for job in _sequence(config.get("scrape_configs"), "scrape_configs")
    ]
    matching = [job for job in jobs if job.get("job_name") == job_name]
    assert len(matching) == 1, f"expected one scrape job named {job_name!r}"
    job = matching[0]
    targets = {
        str(target)
        for static in _sequence(job.get("static_configs"), "static_configs")
        for target in _sequence(_mapping(static, "static config").get("targets"), "targets")
    }
    return job, targets


def _alert_rules() -> list[dict[str, Any]]:
    groups = _sequence(_load_yaml(PROMETHEUS_RULES).get("groups"), "groups")
    return [
        _mapping(rule, "rule")
        for group in groups
        for rule in _sequence(_mapping(group, "group").get("rules"), "rules")
    ]


def _dashboard() -> dict[str, Any]:
    with GRAFANA_DASHBOARD.open(encoding="utf-8") as file:
        return _mapping(json.load(file), GRAFANA_DASHBOARD.name)


def _panels(panels: list[Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    flat = []
    for panel in panels:
        panel = _mapping(panel, "panel")
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat


def _dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [
        str(target["expr"])
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            queries.append(str(variable.get("definition", "")))
    return queries


GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$session": ".*"}


def _promql(query: str, variables: dict[str, str] = GRAFANA_VARIABLES) -> str:
    """A dashboard query as Prometheus takes it: Grafana's variables replaced by values."""
    for variable, value in variables.items():
        query = query.replace(variable, value)
    return query


def _rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it (an open row's are those after it, a collapsed row's nested)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in _sequence(dashboard.get("panels"), "panels"):
        panel = _mapping(panel, "panel")
        if panel.get("type") == "row":
            current = rows.setdefault(str(panel["title"]), [])
            current.extend(_panels(panel.get("panels", [])))
        else:
            assert current is not None, f"panel {panel.get('title')!r} comes before any row"
            current.append(panel)
    return rows


def _panel_queries(panel: dict[str, Any]) -> list[str]:
    return [str(target["expr"]) for target in panel.get("targets", []) if "expr" in target]


CATALOGUE_ROW = re.compile(
    r"^\| `(podium_[a-z_]+)` \| (\w+) \|[^|]*\| ([^|]*) \| ([^|]*) \|", re.MULTILINE
)


def _catalogue() -> dict[str, tuple[frozenset[str], str]]:
    """Metric name -> (label names, how to aggregate across nodes), from docs/metrics.md."""
    return {
        name: (frozenset(label.strip() for label in labels.split(",")) - {"—"}, across.strip())
        for name, _, labels, across in CATALOGUE_ROW.findall(
            METRIC_CATALOGUE.read_text(encoding="utf-8")
        )
    }


def _rule_tests() -> list[dict[str, Any]]:
    tests = _sequence(_load_yaml(PROMETHEUS_RULE_TESTS).get("tests"), "tests")
    return [
        _mapping(case, "alert rule test")
        for test in tests
        for case in _sequence(_mapping(test, "test").get("alert_rule_test"), "alert_rule_test")
    ]


def _run_promtool(*arguments: str) -> None:
    result = subprocess.run(
        [require_program("promtool"), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(arguments)}:\n{result.stdout}{result.stderr}"
    )


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_defines_every_service_of_the_deployment() -> None:
    missing = REQUIRED_SERVICES - _services().keys()

    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"


def test_both_podium_nodes_are_built_from_the_repository_dockerfile() -> None:
    assert set(_podium_services()) == {"podium-1", "podium-2"}


def test_both_podium_nodes_share_the_redis_service_but_differ_in_node_id_and_host_port() -> None:
    services = _services()
    nodes = _podium_services()
    environments = {name: _environment(name, service) for name, service in nodes.items()}

    for name, environment in environments.items():
        url = urlsplit(environment["PODIUM_REDIS_URL"])
        assert url.scheme == "redis", name
        assert url.hostname in services, f"{name} points at {url.hostname!r}, not a service"
        assert url.hostname == "redis", name
        assert url.port == 6379, name
    node_ids = [environment["PODIUM_NODE_ID"] for environment in environments.values()]
    assert len(set(node_ids)) == len(nodes), f"node ids are not distinct: {node_ids}"
    host_ports = [
        frozenset(host for host, _, _ in _published_ports(name, service))
        for name, service in nodes.items()
    ]
    assert all(host_ports), "every podium node publishes a host port"
    assert len(set(host_ports)) == len(nodes), f"podium nodes share host ports: {host_ports}"


def test_podium_nodes_wait_for_a_healthy_redis_and_report_readiness() -> None:
    for name, service in _podium_services().items():
        depends_on = _mapping(service.get("depends_on"), f"{name}.depends_on")
        assert _mapping(depends_on["redis"], "redis")["condition"] == "service_healthy", name
        healthcheck = " ".join(map(str, _mapping(service["healthcheck"], name)["test"]))
        assert "http://localhost:8080/readyz" in healthcheck, name
    redis_check = _mapping(_services()["redis"]["healthcheck"], "redis.healthcheck")["test"]
    assert "redis-cli" in redis_check
    assert "ping" in redis_check


def test_podium_nodes_publish_the_port_they_listen_on() -> None:
    for name, service in _podium_services().items():
        listen_port = int(_environment(name, service)["PODIUM_PORT"])
        container_ports = {container for _, container, _ in _published_ports(name, service)}
        assert container_ports == {listen_port}, name


def test_secrets_must_be_supplied_and_have_no_default() -> None:
    nodes = _podium_services()
    for name, service in nodes.items():
        environment = _environment(name, service)
        for variable in ("PODIUM_JWT_SECRET", "PODIUM_TURN_SECRET"):
            assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", environment[variable]), name
    coturn_command = " ".join(map(str, _services()["coturn"]["command"]))
    assert "--use-auth-secret" in coturn_command
    assert "--static-auth-secret=${PODIUM_TURN_SECRET:?" in coturn_command


def test_coturn_refuses_to_relay_into_private_and_loopback_networks() -> None:
    command = [str(arg) for arg in _services()["coturn"]["command"]]
    denied = [arg.split("=", 1)[1] for arg in command if arg.startswith("--denied-peer-ip=")]
    for address in ("10.1.2.3", "127.0.0.1", "169.254.169.254", "172.20.0.5", "192.168.1.10"):
        ip = ipaddress.IPv4Address(address)
        assert any(
            ipaddress.IPv4Address(low) <= ip <= ipaddress.IPv4Address(high)
            for low, high in (r.split("-") for r in denied if ":" not in r)
        ), address
    assert "--no-multicast-peers" in command


def test_no_two_services_publish_the_same_host_port() -> None:
    published = Counter(
        (host, protocol)
        for name, service in _services().items()
        for host, _, protocol in _published_ports(name, service)
    )
    duplicates = [port for port, count in published.items() if count > 1]

    assert not duplicates, f"host ports published twice: {duplicates}"


def test_every_bind_mounted_host_path_exists_in_the_repository() -> None:
    for name, service in _services().items():
        for source in _bind_mount_sources(name, service):
            path = (COMPOSE_FILE.parent / source).resolve()
            assert path.is_relative_to(ROOT), f"{name} mounts {source}, outside the repository"
            assert path.exists(), f"{name} mounts {source}, which does not exist"


def test_every_named_volume_is_declared() -> None:
    declared = set(_load_yaml(COMPOSE_FILE).get("volumes") or {})
    for name, service in _services().items():
        for entry in _sequence(service.get("volumes", []), f"{name}.volumes"):
            source = str(entry).split(":", 1)[0] if isinstance(entry, str) else ""
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source!r}"


def test_redis_persists_with_an_append_only_file_on_a_named_volume() -> None:
    redis = _services()["redis"]
    command = redis["command"]
    arguments = command.split() if isinstance(command, str) else [str(part) for part in command]

    assert arguments[arguments.index("--appendonly") + 1] == "yes"
    assert arguments[arguments.index("--appendfsync") + 1] == "everysec"
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])


# --- Dockerfile ----------------------------------------------------------------------------------


def test_the_dockerfile_runs_podium_serve_as_a_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    commands = [arguments for keyword, arguments in instructions if keyword == "CMD"]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]

    assert commands, "the Dockerfile has no CMD"
    assert json.loads(commands[-1]) == ["podium", "serve"]
    assert users, "the Dockerfile never leaves the root user"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_dockerfile_exposes_the_port_the_nodes_listen_on() -> None:
    exposed = {
        int(port.split("/")[0])
        for keyword, arguments in _dockerfile_instructions()
        if keyword == "EXPOSE"
        for port in arguments.split()
    }
    for name, service in _podium_services().items():
        assert int(_environment(name, service)["PODIUM_PORT"]) in exposed, name


# --- Prometheus ----------------------------------------------------------------------------------


def test_prometheus_scrapes_exactly_the_podium_nodes_at_their_container_port() -> None:
    job, targets = _scrape_targets(PODIUM_JOB)
    expected = {
        f"{name}:{_environment(name, service)['PODIUM_PORT']}"
        for name, service in _podium_services().items()
    }

    assert targets == expected
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval") == "5s"


def test_prometheus_loads_the_rules_file_mounted_beside_its_config() -> None:
    config = _load_yaml(PROMETHEUS_CONFIG)

    assert _sequence(config.get("rule_files"), "rule_files") == ["rules.yml"]
    mounts = " ".join(map(str, _services()["prometheus"]["volumes"]))
    assert "./config/prometheus/rules.yml:/etc/prometheus/rules.yml" in mounts
    assert "./config/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml" in mounts


def test_every_alert_rule_has_an_expression_a_duration_a_severity_and_a_summary() -> None:
    rules = _alert_rules()

    assert rules, "rules.yml defines no rules"
    for rule in rules:
        name = rule.get("alert", rule.get("record"))
        assert rule.get("expr"), name
        assert rule.get("for"), name
        assert _mapping(rule.get("labels"), f"{name}.labels").get("severity"), name
        assert _mapping(rule.get("annotations"), f"{name}.annotations").get("summary"), name


def test_the_first_rule_group_holds_podiums_core_alerts() -> None:
    first = _mapping(_sequence(_load_yaml(PROMETHEUS_RULES)["groups"], "groups")[0], "group")
    alerts = {_mapping(rule, "rule")["alert"] for rule in first["rules"]}

    assert first["name"] == "podium"
    assert alerts >= {
        "PodiumNoNodeReady",
        "PodiumStoreErrors",
        "PodiumSlowSocketDisconnectsRising",
        "PodiumFanoutLatencyHigh",
        "PodiumEventLoopLag",
    }


def test_the_rules_alert_on_every_failure_the_issue_names() -> None:
    # Each failure an operator must hear about, the alert for it and the metric it watches.
    expected = {
        "no node ready": ("PodiumNoNodeReady", "up"),
        "store unreachable": ("PodiumStoreErrors", "podium_store_errors_total"),
        "slow-socket disconnects rising": (
            "PodiumSlowSocketDisconnectsRising",
            "podium_signaling_slow_disconnects_total",
        ),
        "a live session's floor channel offline": (
            "PodiumFloorOfflineWhileLive",
            "podium_stream_channel_live",
        ),
        "fan-out latency high": (
            "PodiumFanoutLatencyHigh",
            "podium_signaling_fanout_latency_seconds_bucket",
        ),
        "moderation backlog growing": ("PodiumModerationBacklogGrowing", "podium_qa_queue_depth"),
    }
    rules = {str(rule["alert"]): str(rule["expr"]) for rule in _alert_rules()}

    for failure, (alert, metric) in expected.items():
        assert alert in rules, f"no alert for {failure}"
        assert re.search(rf"\b{metric}\b", rules[alert]), f"{alert} does not watch {metric}"


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_silent() -> None:
    alerts = {str(rule["alert"]) for rule in _alert_rules()}
    cases = _rule_tests()
    fires = {str(case["alertname"]) for case in cases if case.get("exp_alerts")}
    silent = {str(case["alertname"]) for case in cases if not case.get("exp_alerts")}

    assert alerts - fires == set(), f"never shown firing: {sorted(alerts - fires)}"
    assert alerts - silent == set(), f"never shown silent: {sorted(alerts - silent)}"
    assert (fires | silent) - alerts == set(), "rules_test.yml tests an alert rules.yml lacks"


def test_cluster_wide_gauges_are_taken_once_with_max_never_summed_over_nodes() -> None:
    # Every node reports the same store-derived figure (people online, questions per state, a
    # session's state); summing over nodes would count it once per node. docs/metrics.md says
    # which metrics are like this ("max" across nodes): each use must be inside a max first.
    taken_with_max = [
        name for name, (_, across) in _catalogue().items() if across.startswith("max")
    ]
    expressions = [str(rule["expr"]) for rule in _alert_rules()] + [
        query for query in _dashboard_queries(_dashboard()) if not query.startswith("label_values(")
    ]
    inside_max = re.compile(r"max\s*(?:(?:by|without)\s*\([^()]*\)\s*)?\(\s*$")

    assert "podium_presence_online_participants" in taken_with_max
    for expression in expressions:
        for name in taken_with_max:
            for use in re.finditer(rf"\b{name}\b", expression):
                before = expression[: use.start()]
                assert inside_max.search(before), f"{name} is not taken with max in: {expression}"


@pytest.mark.promtool
def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    # promtool resolves rules_test.yml's rule_files beside it: the shipped rules.yml.
    _run_promtool("test", "rules", str(PROMETHEUS_RULE_TESTS.relative_to(ROOT)))


def test_alert_rules_only_use_metrics_podium_exports() -> None:
    for rule in _alert_rules():
        unknown = _metric_names(str(rule["expr"])) - KNOWN_METRICS
        assert not unknown, f"{rule['alert']} uses unknown metrics {sorted(unknown)}"


@pytest.mark.promtool
def test_promtool_accepts_the_alert_rules() -> None:
    _run_promtool("check", "rules", str(PROMETHEUS_RULES.relative_to(ROOT)))


@pytest.mark.promtool
def test_promtool_accepts_the_prometheus_config() -> None:
    _run_promtool("check", "config", str(PROMETHEUS_CONFIG.relative_to(ROOT)))


@pytest.mark.promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # promtool has no offline "check this expression", so each query becomes a recording rule,
    # with Grafana's variables replaced by values Prometheus accepts.
    rules = []
    for index, query in enumerate(_dashboard_queries(_dashboard())):
        if query.startswith("label_values("):
            continue
        rules.append({"record": f"dashboard:query_{index}", "expr": _promql(query)})
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    _run_promtool("check", "rules", str(rules_file))


# --- Grafana -------------------------------------------------------------------------------------


def _metric_names(expression: str) -> set[str]:
    return {HISTOGRAM_SUFFIX.sub("", name) for name in METRIC_NAME.findall(expression)}


def test_the_dashboard_only_queries_metrics_podium_exports() -> None:
    dashboard = _dashboard()
    queries = _dashboard_queries(dashboard)

    assert dashboard["schemaVersion"] == 39
    assert queries, "the dashboard has no queries"
    used = set().union(*(_metric_names(query) for query in queries))
    assert used <= KNOWN_METRICS, f"unknown metrics: {sorted(used - KNOWN_METRICS)}"


def test_dashboard_panels_have_unique_ids_and_use_the_provisioned_datasource() -> None:
    datasources = _sequence(_load_yaml(GRAFANA_DATASOURCES).get("datasources"), "datasources")
    provisioned = {str(_mapping(source, "datasource")["uid"]) for source in datasources}
    panels = _panels(_dashboard()["panels"])
    ids = [panel["id"] for panel in panels]

    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        assert "gridPos" in panel, panel["title"]
        targets = panel.get("targets", [])
        references = [panel.get("datasource"), *(target.get("datasource") for target in targets)]
        for reference in filter(None, references):
            assert _mapping(reference, "datasource")["uid"] in provisioned, panel["title"]


def test_grafana_provisions_prometheus_and_loads_dashboards_from_the_mounted_folder() -> None:
    datasources = _sequence(_load_yaml(GRAFANA_DATASOURCES).get("datasources"), "datasources")
    providers = _sequence(_load_yaml(GRAFANA_PROVIDERS).get("providers"), "providers")
    grafana_mounts = [str(volume) for volume in _services()["grafana"]["volumes"]]

    prometheus = _mapping(datasources[0], "datasource")
    assert prometheus["type"] == "prometheus"
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    dashboards_path = _mapping(_mapping(providers[0], "provider")["options"], "options")["path"]
    assert f"./config/grafana/dashboards:{dashboards_path}:ro" in grafana_mounts
    assert "./config/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_mounts


def test_the_dashboard_has_the_rows_operators_look_for() -> None:
    rows = _rows(_dashboard())

    assert next(iter(rows)) == "Event overview"
    assert {"Event overview", "Session $session", "Q&A", "Streams", "System"} <= set(rows)
    assert all(rows.values()), f"empty rows: {[title for title, ps in rows.items() if not ps]}"


def test_the_session_variable_lists_the_programmes_sessions_and_allows_several() -> None:
    variables = {str(v["name"]): v for v in _dashboard().get("templating", {}).get("list", [])}
    session = _mapping(variables.get("session"), "the session variable")

    assert session["type"] == "query"
    assert re.fullmatch(r"label_values\(podium_[a-z_]+, session\)", str(session["definition"]))
    assert session["multi"] is True
    assert session["includeAll"] is True
    assert session["allValue"] == ".*"


def test_session_rows_follow_the_session_variable_the_overview_counts_every_session() -> None:
    rows = _rows(_dashboard())
    with_session = {name for name, (labels, _) in _catalogue().items() if "session" in labels}
    selector = re.compile(r"\b(podium_[a-z_]+?)(?:_bucket|_sum|_count)?\b(\{[^}]*\})?")

    for title in ("Session $session", "Q&A", "Floor", "Streams"):
        for panel in rows[title]:
            for query in _panel_queries(panel):
                for name, matchers in selector.findall(query):
                    if name in with_session:
                        assert 'session=~"$session"' in matchers, f"{panel['title']}: {query}"
    for panel in rows["Event overview"]:
        for query in _panel_queries(panel):
            assert "$session" not in query, f"the event overview filters {panel['title']!r}"
