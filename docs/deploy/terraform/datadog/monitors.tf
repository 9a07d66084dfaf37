# The monitors of docs/monitoring.md ("Monitors worth having"), same queries.

locals {
  message = "See docs/monitoring.md and the ssogate dashboard. ${var.notify}"
}

resource "datadog_monitor" "login_failures" {
  name    = "ssogate: login failures spike"
  type    = "query alert"
  message = "Many refused logins: an attack, or a broken IdP setup (look at reason). ${local.message}"
  query   = "sum(last_5m):sum:ssogate.logins_failed.count{${var.scope}} by {reason}.as_count() > 20"
  monitor_thresholds {
    critical = 20
  }
}

resource "datadog_monitor" "signature_failures" {
  name    = "ssogate: SAML signature failures"
  type    = "query alert"
  message = "Forged responses, or the IdP rotated its signing certificate (docs/staging.md). ${local.message}"
  query   = "sum(last_15m):sum:ssogate.logins_failed.count{${var.scope},reason:signature}.as_count() > 0"
  monitor_thresholds {
    critical = 0
  }
}

resource "datadog_monitor" "server_errors" {
  name    = "ssogate: 5xx rate"
  type    = "query alert"
  message = "Redash down (502) or slow (504). ${local.message}"
  query   = "sum(last_10m):sum:ssogate.requests.count{${var.scope},class:5xx}.as_count() / sum:ssogate.requests.count{${var.scope}}.as_count() > 0.02"
  monitor_thresholds {
    critical = 0.02
  }
}

resource "datadog_monitor" "upstream_errors" {
  name    = "ssogate: upstream errors"
  type    = "query alert"
  message = "connect: Redash tasks gone; timeout: requests beyond [upstream] timeout. ${local.message}"
  query   = "sum(last_5m):sum:ssogate.upstream_errors.count{${var.scope}} by {kind}.as_count() > 10"
  monitor_thresholds {
    critical = 10
  }
}

resource "datadog_monitor" "store_errors" {
  name    = "ssogate: store errors"
  type    = "query alert"
  message = "Logins fail closed while Redis is away. ${local.message}"
  query   = "sum(last_5m):sum:ssogate.store_errors.count{${var.scope}}.as_count() > 0"
  monitor_thresholds {
    critical = 0
  }
}

resource "datadog_monitor" "rate_limited" {
  name    = "ssogate: login rate limiting"
  type    = "query alert"
  message = "A login flood. ${local.message}"
  query   = "sum(last_5m):sum:ssogate.rate_limited.count{${var.scope}}.as_count() > 100"
  monitor_thresholds {
    critical = 100
  }
}

resource "datadog_monitor" "idp_certificate" {
  name    = "ssogate: IdP signing certificate expires soon"
  type    = "query alert"
  message = "Rotate it as in docs/staging.md (a new task-definition revision with both certificates). ${local.message}"
  query   = "min(last_1h):min:ssogate.idp_cert_days_to_expiry{${var.scope}} < 30"
  monitor_thresholds {
    critical = 30
  }
}

# The agent cannot scrape /metrics: every other monitor goes blind.
resource "datadog_monitor" "scrape" {
  name    = "ssogate: metrics not scraped"
  type    = "service check"
  message = "The Datadog agent sidecar cannot read 127.0.0.1:9090/metrics. ${local.message}"
  query   = "\"ssogate.openmetrics.health\".over(\"${var.scope}\").by(\"endpoint\").last(3).count_by_status()"
  monitor_thresholds {
    critical = 2
    ok       = 1
  }
}
