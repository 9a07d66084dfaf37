"""The Datadog metric names in docs/deploy/terraform/datadog (dashboard,
monitors) and docs/monitoring.md are the ones the Datadog agent really
produces from the running binary's /metrics.

No agent runs here, so its naming is reproduced from its source
(DataDog/integrations-core, datadog_checks_base/.../openmetrics/v2):
- the text is parsed with prometheus_client's parser, as scraper.py does
  (Debian's python3-prometheus-client); that parser names a counter family
  without its `_total`;
- scraper.py parse_metrics(): `raw_metric_prefix` is cut from the family name
  first, and every other option (the `metrics` patterns) sees the cut name;
- transform.py: a pattern in `metrics` is searched (re.search) in that name;
- transformers/counter.py: a counter is sent as `<name>.count` (monotonic
  count of the `_total` sample); gauge.py: `<name>`; histogram.py (defaults:
  buckets collected, cumulative): `<name>.sum`, `<name>.count`, `<name>.bucket`;
- base.py adopt_namespace(): everything is sent under `<namespace>.`, and the
  scraper's health service check is `<namespace>.openmetrics.health`;
- label names become tag keys, label values tag values.
The check's options are read from the task definition's docker label, so a
change there that breaks the names fails here.
"""
import glob
import json
import os
import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import ecs_rules
from deploy_support import ROOT, TERRAFORM, it, task_definition  # noqa: F401 (fixture)

# The integration suite's fixtures: a real gate with a test IdP, and cleanup.
idp_gate, gate_factory, upstream = it.idp_gate, it.gate_factory, it.upstream
no_process_outlives_its_test = it.no_process_outlives_its_test


def openmetrics_instance(task_definition):
    label = ecs_rules.container(task_definition, "ssogate")["dockerLabels"]["com.datadoghq.ad.checks"]
    (instance,) = json.loads(label)["openmetrics"]["instances"]
    return instance


def datadog_names(text, instance):
    """{datadog metric name: set of tag keys}, and {tag key: set of values}."""
    namespace = instance["namespace"]
    prefix = instance.get("raw_metric_prefix", "")
    patterns = [re.compile(p) if p != re.escape(p) else re.compile("^%s$" % re.escape(p))
                for p in instance["metrics"]]
    names, values = {}, {}
    suffixes = {"counter": [".count"], "gauge": [""], "histogram": [".sum", ".count", ".bucket"],
                "summary": [".sum", ".count", ".quantile"]}
    for family in text_string_to_metric_families(text):
        name = family.name
        if prefix and name.startswith(prefix):
            name = name[len(prefix):]
        if not any(p.search(name) for p in patterns):
            continue
        tags = set()
        for sample in family.samples:
            for k, v in sample.labels.items():
                if k == "le":
                    k = "upper_bound"
                tags.add(k)
                values.setdefault(k, set()).add(v)
        for suffix in suffixes[family.type]:
            names["%s.%s%s" % (namespace, name, suffix)] = tags
    return names, values


def naming_of(prometheus_name, kind, instance):
    """One documented Prometheus metric -> its Datadog names (same rules)."""
    text = "# TYPE %s %s\n%s%s 0\n" % (prometheus_name, kind, prometheus_name,
                                      "_count" if kind == "histogram" else "")
    return sorted(datadog_names(text, instance)[0])


@pytest.fixture
def scraped(idp_gate, task_definition):
    gate, _ = idp_gate
    text = requests.get("http://127.0.0.1:%d/metrics" % gate.metrics_port, timeout=5).text
    instance = openmetrics_instance(task_definition)
    names, values = datadog_names(text, instance)
    return text, instance, names, values


def queries():
    """Every query string of the Datadog Terraform root."""
    found = []
    for path in sorted(glob.glob(os.path.join(TERRAFORM, "datadog", "*.tf"))):
        for q in re.findall(r'^\s*(?:q|query)\s*=\s*"((?:[^"\\]|\\.)*)"', open(path).read(), re.M):
            found.append((os.path.basename(path), q.replace('\\"', '"').replace("${var.scope}", "service:ssogate")))
    return found


METRIC_IN_QUERY = re.compile(r"(?:sum|min|max|avg):(ssogate\.[a-z_.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?")


def test_the_naming_rules_reproduce_the_wrong_names_of_the_issue():
    """Without raw_metric_prefix Datadog says ssogate.ssogate_requests.count."""
    text = "# TYPE ssogate_requests_total counter\nssogate_requests_total{class=\"2xx\"} 1\n"
    plain = {"namespace": "ssogate", "metrics": ["ssogate_.*"]}
    assert list(datadog_names(text, plain)[0]) == ["ssogate.ssogate_requests.count"]
    cut = {"namespace": "ssogate", "raw_metric_prefix": "ssogate_", "metrics": [".*"]}
    assert list(datadog_names(text, cut)[0]) == ["ssogate.requests.count"]


def test_both_task_definitions_configure_the_check_alike(task_definition):
    instance = openmetrics_instance(task_definition)
    assert instance["raw_metric_prefix"] == "ssogate_" and instance["namespace"] == "ssogate"
    assert instance["openmetrics_endpoint"].startswith("http://127.0.0.1:9090/")
    ecs_tf = open(os.path.join(TERRAFORM, "aws", "ecs.tf")).read()
    assert 'raw_metric_prefix    = "ssogate_"' in ecs_tf and 'namespace            = "ssogate"' in ecs_tf


def test_dashboard_and_monitors_use_names_datadog_produces(scraped):
    _, instance, names, values = scraped
    qs = queries()
    assert len(qs) >= 15
    used = set()
    for where, q in qs:
        if q.startswith('"ssogate.openmetrics.health"'):
            assert instance["namespace"] + ".openmetrics.health" in q
            continue
        found = METRIC_IN_QUERY.findall(q)
        assert found, "%s: no metric in %r" % (where, q)
        for metric, scope, by in found:
            assert metric in names, "%s: %s is not a name Datadog produces (%s)" % (where, metric, sorted(names))
            used.add(metric)
            for tag in filter(None, (t.strip() for t in scope.split(","))):
                key, _, value = tag.partition(":")
                if key == "service":
                    continue  # set by the docker label, not by ssogate
                assert key in names[metric], "%s: %s has no tag %s" % (where, metric, key)
                assert value in values[key], "%s: tag %s never has value %s" % (where, key, value)
            for key in filter(None, (t.strip() for t in by.split(","))):
                assert key in names[metric], "%s: %s has no tag %s to group by" % (where, metric, key)
    for needed in ("ssogate.requests.count", "ssogate.logins_failed.count", "ssogate.idp_cert_days_to_expiry",
                   "ssogate.upstream_errors.count"):
        assert needed in used


def test_monitoring_md_names_match_the_binary_and_the_rules(scraped):
    text, instance, names, _ = scraped
    live = {f.name if f.type != "counter" else f.name + "_total": f.type
            for f in text_string_to_metric_families(text)}
    doc = open(os.path.join(ROOT, "docs", "monitoring.md")).read()
    rows = re.findall(r"^\| `(ssogate_[a-z_]+)` \| (counter|gauge|histogram) \|[^|]*\| ([^|]*) \|", doc, re.M)
    assert rows, "docs/monitoring.md has no metric table with a Datadog column"
    documented = set()
    for prom, kind, dd in rows:
        documented.add(prom)
        dd_names = sorted(re.findall(r"`([^`]+)`", dd))
        assert dd_names == naming_of(prom, kind, instance), "%s: Datadog column says %s" % (prom, dd_names)
        if prom in live:
            assert live[prom] == kind, "%s is a %s, the table says %s" % (prom, live[prom], kind)
    assert set(live) <= documented, "undocumented metrics: %s" % sorted(set(live) - documented)
    # Any other Datadog name the page mentions (monitor queries) is real too.
    for metric in re.findall(r"(?<=[:`])ssogate\.[a-z_]+(?:\.[a-z_]+)?", doc):
        assert metric in names or metric == instance["namespace"] + ".openmetrics.health" or \
            metric in {n for _, k, dd in rows for n in re.findall(r"`([^`]+)`", dd)}, \
            "docs/monitoring.md mentions %s, which Datadog does not produce" % metric
