"""``docs/metrics.md`` names exactly the metric families a node exports: names, types, label names."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestServer
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from config.appkeys import FLOOR, QNA, RELAY, STREAMING
from tests.conftest import ClientFactory, app_of
from tests.test_deployment import KNOWN_METRICS
from tests.test_metrics import _metrics, _settled

CATALOGUE = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
ROW = re.compile(
    r"^\| `(podium_[a-z_]+)` \| (counter|gauge|histogram|summary) \|[^|]*\| ([^|]*) \|"
)
OTHER = "other"

Family = tuple[str, frozenset[str]]  # (type, label names)


def _documented() -> dict[str, Family]:
    """Family name -> (type, label names), from the catalogue's metric table."""
    families: dict[str, Family] = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        name, kind, labels = match.groups()
        if kind == "counter":
            assert name.endswith("_total"), f"{name}: a counter is named with _total"
            name = name.removesuffix("_total")
        assert name not in families, f"{name} is listed twice"
        names = frozenset(label.strip() for label in labels.split(",")) - {"—", ""}
        families[name] = (kind, names)
    assert families, "no metric rows found in docs/metrics.md"
    return families


def _exported(text: str) -> dict[str, tuple[str, frozenset[str], int]]:
    """Family name -> (type, label names seen on samples, sample count), from a scrape."""
    families: dict[str, tuple[str, frozenset[str], int]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created") and family.name.removesuffix("_created") in families:
            continue  # prometheus-client's creation timestamps of counters and histograms
        labels = frozenset(label for sample in family.samples for label in sample.labels)
        families[family.name] = (family.type, labels - {"le", "quantile"}, len(family.samples))
    return families


def _metric_objects(server: TestServer) -> dict[str, MetricWrapperBase]:
    """The node's metric objects by family name, to give an unused labelled family a series."""
    app = app_of(server)
    owners = (app[RELAY].metrics, app[QNA].metrics, app[FLOOR].metrics, app[STREAMING].metrics)
    objects: dict[str, MetricWrapperBase] = {}
    for owner in owners:
        for value in vars(owner).values():
            if isinstance(value, MetricWrapperBase):
                for described in value.describe():
                    objects[described.name] = value
    return objects


async def test_the_catalogue_lists_exactly_the_exported_metric_families(
    node: TestServer, connect: ClientFactory
) -> None:
    documented = _documented()
    await connect(node)
    await _settled(node)
    first = _exported(await _metrics(node))

    assert set(documented) == set(first), (
        f"exported but not documented: {sorted(set(first) - set(documented))}; "
        f"documented but not exported: {sorted(set(documented) - set(first))}"
    )
    # A labelled family shows its label names only once it has a series. Give each empty one a
    # series with the documented label names: labels() refuses names the metric was not made with.
    objects = _metric_objects(node)
    for name, (_, _, samples) in first.items():
        if samples:
            continue
        assert documented[name][1], f"{name} has no series yet is documented without labels"
        assert name in objects, f"{name}: the test cannot reach its metric object to fill it"
        objects[name].labels(**dict.fromkeys(documented[name][1], OTHER))
    exported = _exported(await _metrics(node))

    for name, (kind, labels) in documented.items():
        exported_kind, exported_labels, samples = exported[name]
        assert samples, f"{name} exports no series"
        assert kind == exported_kind, f"{name}: documented {kind}, exported {exported_kind}"
        assert labels == exported_labels, (
            f"{name}: documented labels {sorted(labels)}, exported {sorted(exported_labels)}"
        )


def test_every_documented_label_has_its_value_set_described() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    described = set(re.findall(r"^\| `([a-z_]+)`(?: \([^)]*\))? \|", text, flags=re.MULTILINE))
    used = set().union(*(labels for _, labels in _documented().values()))
    assert used <= described, f"labels without a value set: {sorted(used - described)}"


def test_every_metric_the_dashboard_and_alerts_may_use_is_in_the_catalogue() -> None:
    # The catalogue test above ties the document to a live node, so this ties the deployment
    # tests' list of usable metrics (dashboard panels, alert rules) to what a node exports.
    documented = {
        f"{name}_total" if kind == "counter" else name for name, (kind, _) in _documented().items()
    }
    missing = KNOWN_METRICS - documented
    assert not missing, f"not exported: {sorted(missing)}"
