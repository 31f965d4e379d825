"""The docs, the dashboard and the alerts agree with the code: settings, metric names, links.

A setting added to ``core.settings.Settings`` or a metric added to ``core.metrics.Metrics`` without
its line in the README or docs/metrics.md fails here, and so does a dashboard or an alert that names
a metric the service does not export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from core.metrics import Metrics
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "reminders-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOCS = ("events.md", "statuses.md", "scheduling.md", "metrics.md", "design.md")

METRIC_REF = re.compile(r"\breminders_[a-z0-9_]+\b")
# What prometheus_client exports for each kind of metric family (counters get ``_total``).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def _families() -> dict[str, str]:
    """Each metric family of the service, by its name as exported (``_total`` for counters)."""
    families: dict[str, str] = {}
    for family in Metrics().registry.collect():
        exported = family.name + "_total" if family.type == "counter" else family.name
        families[exported] = family.type
    return families


def _series_names() -> dict[str, str]:
    """Every series name the service can export, mapped to its family's exported name."""
    names: dict[str, str] = {}
    for family in Metrics().registry.collect():
        exported = family.name + "_total" if family.type == "counter" else family.name
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = exported
    return names


def _section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _config_rows() -> dict[str, str]:
    """README configuration table: each variable named in a row's first cell -> that row's default cell."""
    rows: dict[str, str] = {}
    for line in _section(README.read_text(), "Configuration").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        for name in re.findall(r"REMINDERS_[A-Z0-9_]+", cells[0]):
            rows[name] = cells[1]
    return rows


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found: list[dict[str, Any]] = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))
    return found


def _dashboard_exprs() -> list[str]:
    dashboard = _dashboard()
    exprs = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", []) if "expr" in t]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            exprs.append(query)
    return exprs


def _alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _balanced(expr: str) -> bool:
    """Brackets of a PromQL expression pair up (quoted strings aside)."""
    pairs, stack, quote = {")": "(", "]": "[", "}": "{"}, [], ""
    for char in expr:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack and not quote


# -- README -----------------------------------------------------------------------------------------


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert lines[:3] == ["# Reminder Service", "", "```sh"]
    assert lines[3].startswith("make run ")
    assert lines[4].startswith("make test ")


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_configuration_table(field: str) -> None:
    assert f"REMINDERS_{field.upper()}" in _config_rows(), f"REMINDERS_{field.upper()} is not documented"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_documented_defaults_match_the_code(field: str) -> None:
    default = Settings.model_fields[field].default
    cell = _config_rows()[f"REMINDERS_{field.upper()}"]
    if default is None or isinstance(default, SecretStr) or default == "":
        return
    if isinstance(default, int | float) and not isinstance(default, bool):
        numbers = {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)}
        assert float(default) in numbers, f"REMINDERS_{field.upper()}: default {default}, README says {cell}"
    else:
        assert f"`{default}`" in cell, f"REMINDERS_{field.upper()}: default {default}, README says {cell}"


@pytest.mark.parametrize("name", DOCS)
def test_readme_links_every_doc(name: str) -> None:
    assert (ROOT / "docs" / name).is_file()
    assert f"(docs/{name}" in README.read_text(), f"README does not link docs/{name}"


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{name}" for name in DOCS)])
def test_relative_links_resolve(page: str) -> None:
    source = ROOT / page
    for target in re.findall(r"\]\(([^)\s]+)\)", source.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (source.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page} links {target}, which does not exist"


# -- benchmark commands -----------------------------------------------------------------------------

# Where the benchmarks' command lines are written down: the README, the docs, `make bench` and the
# scripts' own docstrings (their --help).
BENCH_SOURCES = sorted(
    {README, ROOT / "Makefile", *(ROOT / "docs").glob("*.md"), *(ROOT / "loadtests").glob("*.py")}
)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("source", BENCH_SOURCES, ids=_relative)
def test_benchmark_commands_name_runnable_modules(source: Path) -> None:
    for name in re.findall(r"-m loadtests\.(\w+)", source.read_text()):
        module = ROOT / "loadtests" / f"{name}.py"
        assert module.is_file(), f"{_relative(source)} runs loadtests.{name}, which does not exist"
        assert 'if __name__ == "__main__":' in module.read_text(), f"loadtests.{name} cannot be run"


@pytest.mark.parametrize("source", BENCH_SOURCES, ids=_relative)
def test_benchmarks_are_not_run_by_path(source: Path) -> None:
    # `python loadtests/x.py` cannot import the loadtests package: -m from the repo root can.
    found = re.findall(r"python\S* loadtests/\w+\.py", source.read_text())
    assert not found, f"{_relative(source)}: {found}; write python -m loadtests.<name>"


# -- metrics ----------------------------------------------------------------------------------------


def test_metrics_are_found() -> None:
    families = _families()
    assert "reminders_fires_total" in families
    assert families["reminders_fire_lag_seconds"] == "histogram"


@pytest.mark.parametrize("metric", sorted(_families()))
def test_every_metric_is_documented(metric: str) -> None:
    assert re.search(rf"\b{metric}\b", METRICS_DOC.read_text()), f"{metric} is not in docs/metrics.md"


@pytest.mark.parametrize("metric", sorted(_families()))
def test_every_metric_has_a_dashboard_panel(metric: str) -> None:
    series = _series_names()
    used = {series[ref] for expr in _dashboard_exprs() for ref in METRIC_REF.findall(expr) if ref in series}
    assert metric in used, f"no dashboard panel shows {metric}"


@pytest.mark.parametrize("source", ["dashboard", "alerts", "docs/metrics.md"])
def test_referenced_metrics_exist(source: str) -> None:
    if source == "dashboard":
        text = "\n".join(_dashboard_exprs())
    elif source == "alerts":
        text = "\n".join(rule["expr"] for rule in _alert_rules())
    else:
        text = METRICS_DOC.read_text()
    known = set(_series_names())
    if source.startswith("docs/"):
        known |= set(_families())  # prose may name a histogram by its family name
    unknown = set(METRIC_REF.findall(text)) - known
    assert not unknown, f"{source} names metrics the service does not export: {sorted(unknown)}"


# -- dashboard --------------------------------------------------------------------------------------


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_dashboard_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in _panels(_dashboard()["panels"])]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"


def test_dashboard_panels_query_the_datasource_variable() -> None:
    for panel in _panels(_dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_queries_are_well_formed() -> None:
    for expr in _dashboard_exprs():
        assert _balanced(expr), expr


# -- alerts and scrape config -----------------------------------------------------------------------


def test_alerts_are_prometheus_rules() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
        assert _balanced(rule["expr"]), rule["expr"]
        assert rule["labels"]["severity"]
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"(\d+[smhd])+", rule["for"]), rule["for"]


def test_alerts_cover_the_failures_that_matter() -> None:
    text = "\n".join(rule["expr"] for rule in _alert_rules())
    for needle in (
        "reminders_fire_lag_seconds_bucket",
        "reminders_dead_letters_total",
        "reminders_due_backlog",
        "reminders_pollers_seen",
        'status=~"5..',
    ):
        assert needle in text, needle


def test_alerts_name_scraped_jobs() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"reminders-api", "reminders-poller"} <= jobs
    assert "alerts.yml" in config["rule_files"]
    for rule in _alert_rules():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, f"{rule['alert']} names job {job!r}, which prometheus.yml does not scrape"
