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
    """Every metric query string of the Datadog Terraform root (dashboard, monitors)."""
    found = []
    for path in (os.path.join(TERRAFORM, "datadog", f) for f in ("dashboard.tf", "monitors.tf")):
        for q in re.findall(r'^\s*(?:q|query)\s*=\s*"((?:[^"\\]|\\.)*)"', open(path).read(), re.M):
            found.append((os.path.basename(path), q.replace('\\"', '"').replace("${var.scope}", "service:ssogate")))
    return found


METRIC_IN_QUERY = re.compile(r"(?:sum|min|max|avg):(ssogate\.[a-z_.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?")
AWS_IN_QUERY = re.compile(r"(?:sum|min|max|avg):(aws\.[a-z_.0-9]+)\{([a-z]+):\$\{var\.([a-z_]+)\}\}")

# The AWS integration's ALB metrics the monitors use (CloudWatch's
# AWS/ApplicationELB names, lower-cased with underscores, as Datadog sends
# them) and the dimension each is tagged with: UnHealthyHostCount and
# HealthyHostCount per target group, HTTPCode_ELB_5XX_Count and RequestCount
# per load balancer (CloudWatch has no target-group dimension for the
# load balancer's own 5xx).
AWS_ALB_METRICS = {
    "aws.applicationelb.un_healthy_host_count": "targetgroup",
    "aws.applicationelb.healthy_host_count": "targetgroup",
    "aws.applicationelb.httpcode_elb_5xx": "loadbalancer",
    "aws.applicationelb.request_count": "loadbalancer",
}
METRICS_C = os.path.join(ROOT, "proxy", "ops", "metrics.c")


def source_families():
    """{prometheus family: type} that proxy/ops/metrics.c can render (some only
    in some configurations, e.g. URL metadata), read from its # TYPE lines."""
    text = open(METRICS_C).read()
    return dict(re.findall(r"# TYPE (ssogate_[a-z_]+) (counter|gauge|histogram)", text))


def source_names(instance):
    """{datadog name: prometheus family} for every family of metrics.c."""
    out = {}
    for family, kind in source_families().items():
        for name in naming_of(family, kind, instance):
            out[name] = family
    return out


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
    from_source = source_names(instance)
    for where, q in qs:
        if q.startswith('"ssogate.openmetrics.health"'):
            assert instance["namespace"] + ".openmetrics.health" in q
            continue
        aws = AWS_IN_QUERY.findall(q)
        for metric, tag, var in aws:
            assert AWS_ALB_METRICS.get(metric) == tag, "%s: %s{%s:...} is not an ALB metric so tagged" % (where, metric, tag)
            assert var == "alb_" + {"targetgroup": "target_group", "loadbalancer": "load_balancer"}[tag], (where, q)
        found = METRIC_IN_QUERY.findall(q)
        assert found or aws, "%s: no metric in %r" % (where, q)
        for metric, scope, by in found:
            if metric not in names:
                # Rendered only in some configurations (URL metadata): the
                # name must still come from a family metrics.c renders.
                assert metric in from_source, "%s: %s is not a name Datadog produces (%s)" % (
                    where, metric, sorted(set(names) | set(from_source)))
                family = from_source[metric]
                text = open(METRICS_C).read()
                base = re.escape(family[:-len("_total")] if family.endswith("_total") else family)
                for tag in filter(None, (t.strip() for t in scope.split(",") + by.split(","))):
                    key, _, value = tag.partition(":")
                    if key == "service":
                        continue
                    label = r'%s=\\"%s\\"' % (key, re.escape(value) if value else r"[^\\]*")
                    assert re.search(r"%s(_total)?\{[^}]*%s" % (base, label), text), \
                        "%s: %s has no label %s in metrics.c" % (where, family, tag)
                used.add(metric)
                continue
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
                   "ssogate.upstream_errors.count", "ssogate.ready", "ssogate.build_info",
                   "ssogate.idp_metadata_fetches.count", "ssogate.idp_metadata_age_seconds"):
        assert needed in used, needed


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


# ---- the log side: the pipeline's attributes, the refusal reasons ---------------------------

LOGS_TF = os.path.join(TERRAFORM, "datadog", "logs.tf")
MONITORS_TF = os.path.join(TERRAFORM, "datadog", "monitors.tf")
MONITORING_MD = os.path.join(ROOT, "docs", "monitoring.md")


@pytest.fixture
def access_line(idp_gate):
    """A real access line of the binary (a refused request: it has every key)."""
    gate, _ = idp_gate
    requests.get(gate.url + "/private/x", headers={"Accept": "application/json", "X-Request-Id": "dd-names"},
                 timeout=5)
    it.wait_until(lambda: any(l.get("request_id") == "dd-names" for l in gate.access_log()), what="access line")
    return next(l for l in gate.access_log() if l.get("request_id") == "dd-names")


def flat_keys(obj, prefix=""):
    out = set()
    for k, v in obj.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= flat_keys(v, prefix + k + ".")
    return out


def test_the_log_pipeline_reads_keys_the_access_line_has(access_line):
    tf = open(LOGS_TF).read()
    keys = flat_keys(access_line)
    sources = re.findall(r'^\s*sources\s*=\s*\["([^"]+)"\]', tf, re.M)
    remapped = re.findall(r'sources\s*=\s*\["([^"]+)"\][^}]*?target\s*=\s*"([^"]+)"', tf, re.S)
    assert remapped, "no attribute remapper in logs.tf"
    for source, target in remapped:
        assert source in keys, "logs.tf remaps %s, which the access line does not have (%s)" % (source, sorted(keys))
    targets = {t for _, t in remapped}
    # Datadog's standard attributes (docs.datadoghq.com/standard-attributes).
    assert {"network.client.ip", "http.method", "http.url_details.path", "usr.email",
            "http.request_id", "network.bytes_written"} <= targets
    # "status" is reserved: the access line carries the code where Datadog looks for it.
    assert access_line["http"]["status_code"] == access_line["status"] == 401
    assert "@http.status_code:[500 TO 599]" in tf and "status_remapper" in tf
    for attr in re.findall(r"@([a-z_.]+)", tf):
        assert attr in keys or attr == "type" and access_line["type"] == "access", attr
    assert re.search(r'expression\s*=\s*"duration_ms \* 1000000"', tf) and "duration_ms" in keys
    assert "time" in sources and "time" in keys
    # Every key of the line is documented, with its Datadog name.
    doc = open(MONITORING_MD).read()
    table = doc[doc.index("## The access line"):doc.index("### Refusal reasons")]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.M))
    assert keys - {"http"} <= documented | {"credential", "error"}, sorted(keys - documented)
    for source, target in remapped:
        assert re.search(r"^\| `%s` \|[^\n]*`%s`" % (re.escape(source), re.escape(target)), table, re.M), \
            "docs/monitoring.md does not say %s becomes %s" % (source, target)


def refusal_tokens_in_the_sources():
    tokens = set()
    for path in glob.glob(os.path.join(ROOT, "proxy", "**", "*.c"), recursive=True):
        text = open(path).read()
        for stmt in re.findall(r"refusal\s*=\s*([^;]+);", text):
            tokens |= set(re.findall(r'"([a-z_]+)"', stmt))
    return tokens


def test_every_refusal_reason_is_documented_with_a_query():
    tokens = refusal_tokens_in_the_sources()
    assert {"no_session", "access_denied", "rate_limited", "bad_request", "upstream_unreachable",
            "upstream_timeout", "not_ready"} <= tokens, sorted(tokens)
    doc = open(MONITORING_MD).read()
    table = doc[doc.index("### Refusal reasons"):doc.index("## Monitors")]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \|[^\n]*\| `([^`]+)` \|$", table, re.M))
    assert set(rows) == tokens, "documented %s, in the code %s" % (sorted(rows), sorted(tokens))
    for token, query in rows.items():
        assert query == "source:ssogate @reason:%s" % token, (token, query)
    assert "source:ssogate" in open(LOGS_TF).read()


def monitors_tf():
    """[(resource, name, body)] of monitors.tf."""
    text = open(MONITORS_TF).read()
    return [(m.group(1), re.search(r'name\s*=\s*"ssogate: ([^"]+)"', m.group(2)).group(1), m.group(2))
            for m in re.finditer(r'resource "datadog_monitor" "([a-z_0-9]+)" \{\n(.*?)\n\}\n', text, re.S)]


def test_monitors_page_only_on_windows_and_the_doc_lists_each():
    monitors = monitors_tf()
    assert len(monitors) >= 14
    doc = open(MONITORING_MD).read()
    table = doc[doc.index("## Monitors"):doc.index("### The Datadog root")]
    rows = {name: query for name, query in re.findall(r"^\| ([^|`]+?) \| (?:service check )?`([^`]+)`", table, re.M)
            if name not in ("monitor",)}
    assert set(rows) == {name for _, name, _ in monitors}, (sorted(rows), sorted(n for _, n, _ in monitors))
    for resource, name, body in monitors:
        assert re.search(r"priority\s*=\s*[1-5]\b", body), resource
        query = re.search(r'query\s*=\s*"((?:[^"\\]|\\.)*)"', body).group(1).replace('\\"', '"')
        shown = query.replace("${var.scope}", "service:ssogate")
        shown = re.sub(r"\$\{var\.alb_[a-z_]+\}", "...", shown)
        assert rows[name] == shown or rows[name] in shown, (name, rows[name], shown)
        if '"query alert"' in body:
            # A window, never the last point alone: sum/min/max over last_Nm.
            assert re.match(r"(sum|min|max)\(last_\d+[mh]\):", query), (resource, query)
            assert "require_full_window" in body, resource
        if "local.page" in body:
            # A page never follows one event: a counter must exceed more than 0.
            crit = float(re.search(r"critical\s*=\s*([0-9.]+)", body).group(1))
            assert not (query.startswith("sum(") and ".as_count()" in query and "/" not in query and crit < 1), resource
    scrape = next(body for r, _, body in monitors if r == "scrape")
    assert re.search(r"notify_no_data\s*=\s*true", scrape) and "no_data_timeframe" in scrape
    assert "local.alb" in next(body for r, _, body in monitors if r == "alb_5xx")


def test_the_site_variable_decides_the_api_url():
    versions = open(os.path.join(TERRAFORM, "datadog", "versions.tf")).read()
    variables = open(os.path.join(TERRAFORM, "datadog", "variables.tf")).read()
    # DD_HOST only counts when api_url is unset: it is set from datadog_site alone, else null.
    assert re.search(r'api_url\s*=\s*var\.datadog_site == null \? null : "https://api\.\$\{var\.datadog_site\}/"',
                     versions), versions
    assert 'variable "datadog_site"' in variables and "datadog_api_url" not in variables + versions
    # The same default as the aws module's datadog_site (DD_SITE, FireLens's intake).
    default = r'variable "datadog_site" \{[^}]*?default\s*=\s*"([^"]+)"'
    aws = open(os.path.join(TERRAFORM, "aws", "variables.tf")).read()
    assert re.search(default, variables).group(1) == re.search(default, aws).group(1)
