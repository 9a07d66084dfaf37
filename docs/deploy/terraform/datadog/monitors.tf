# The monitors of docs/monitoring.md ("Monitors"), same queries.
#
# Nothing pages on a single event: every query sums or bounds a window, a
# warning (told to var.notify) comes before the critical state, and only the
# monitors whose message carries local.page reach var.page, and only when
# critical.  Sparse counters (as_count over a window) are evaluated without
# require_full_window, or a window with one missing point would never alert;
# gauges need the full window, so a task's first minute cannot alert alone.

locals {
  message = "See docs/monitoring.md and the ssogate dashboard. ${var.notify}"
  # PagerDuty and the like: told when it turns critical, and when that ends.
  page = "{{#is_alert}}${var.page}{{/is_alert}}{{#is_alert_recovery}}${var.page}{{/is_alert_recovery}}"
  alb  = var.alb_target_group != "" ? 1 : 0
}

resource "datadog_monitor" "login_failures" {
  name                = "ssogate: login failures spike"
  type                = "query alert"
  priority            = 3
  message             = "Many refused logins: an attack, or a broken IdP setup (look at reason). ${local.message}"
  query               = "sum(last_10m):sum:ssogate.logins_failed.count{${var.scope}} by {reason}.as_count() > 20"
  require_full_window = false
  monitor_thresholds {
    warning  = 10
    critical = 20
  }
}

resource "datadog_monitor" "signature_failures" {
  name                = "ssogate: SAML signature failures"
  type                = "query alert"
  priority            = 2
  message             = "Forged responses, or the IdP rotated its signing certificate (docs/staging.md). One is a warning; three in 15 minutes are critical. ${local.message}"
  query               = "sum(last_15m):sum:ssogate.logins_failed.count{${var.scope},reason:signature}.as_count() > 2"
  require_full_window = false
  monitor_thresholds {
    warning  = 0
    critical = 2
  }
}

# The share of 5xx, over at least 100 requests: at night one 502 out of three
# requests is not 33 % of anything.
resource "datadog_monitor" "server_errors" {
  name                = "ssogate: 5xx rate"
  type                = "query alert"
  priority            = 1
  message             = "Redash down (502) or slow (504): look at the access log's reason (docs/monitoring.md). ${local.message} ${local.page}"
  query               = "sum(last_10m):sum:ssogate.requests.count{${var.scope},class:5xx}.as_count() / clamp_min(sum:ssogate.requests.count{${var.scope}}.as_count(), 100) > 0.05"
  require_full_window = false
  monitor_thresholds {
    warning  = 0.02
    critical = 0.05
  }
}

resource "datadog_monitor" "upstream_errors" {
  name                = "ssogate: upstream errors"
  type                = "query alert"
  priority            = 2
  message             = "connect: Redash tasks gone; timeout: requests beyond [upstream] timeout. ${local.message} ${local.page}"
  query               = "sum(last_5m):sum:ssogate.upstream_errors.count{${var.scope}} by {kind}.as_count() > 10"
  require_full_window = false
  monitor_thresholds {
    warning  = 3
    critical = 10
  }
}

resource "datadog_monitor" "store_errors" {
  name                = "ssogate: store errors"
  type                = "query alert"
  priority            = 2
  message             = "Logins fail closed while Redis is away. ${local.message} ${local.page}"
  query               = "sum(last_10m):sum:ssogate.store_errors.count{${var.scope}}.as_count() > 5"
  require_full_window = false
  monitor_thresholds {
    warning  = 0
    critical = 5
  }
}

resource "datadog_monitor" "rate_limited" {
  name                = "ssogate: login rate limiting"
  type                = "query alert"
  priority            = 3
  message             = "A login flood. ${local.message}"
  query               = "sum(last_10m):sum:ssogate.rate_limited.count{${var.scope}}.as_count() > 100"
  require_full_window = false
  monitor_thresholds {
    warning  = 30
    critical = 100
  }
}

# A task that stays unready for 15 minutes (a deploy's new task is ready in
# seconds): max over the window of the least ready task.
resource "datadog_monitor" "not_ready" {
  name                = "ssogate: a task is not ready"
  type                = "query alert"
  priority            = 2
  message             = "/readyz has answered 503 for 15 minutes: ssogate.ready_check by check says which check fails (idp, store, upstream, shutdown). ${local.message}"
  query               = "max(last_15m):min:ssogate.ready{${var.scope}} < 1"
  require_full_window = true
  monitor_thresholds {
    critical = 1
  }
}

resource "datadog_monitor" "idp_certificate" {
  name                = "ssogate: IdP signing certificate expires soon"
  type                = "query alert"
  priority            = 2
  message             = "Rotate it as in docs/staging.md (a new task-definition revision with both certificates). ${local.message} ${local.page}"
  query               = "min(last_1h):min:ssogate.idp_cert_days_to_expiry{${var.scope}} < 7"
  require_full_window = true
  monitor_thresholds {
    warning  = 30
    critical = 7
  }
}

# Only with [saml] idp_metadata = https://... (the metrics exist only then;
# no data is not an alert).
resource "datadog_monitor" "idp_metadata_fetch_failures" {
  name                = "ssogate: IdP metadata fetches fail"
  type                = "query alert"
  priority            = 3
  message             = "The IdP's metadata URL is down or serves something refused (the last good document stays in use; see the log). ${local.message}"
  query               = "sum(last_1h):sum:ssogate.idp_metadata_fetches.count{${var.scope},result:failed}.as_count() > 3"
  require_full_window = false
  monitor_thresholds {
    critical = 3
  }
}

resource "datadog_monitor" "idp_metadata_stale" {
  name                = "ssogate: IdP metadata not refreshed"
  type                = "query alert"
  priority            = 2
  message             = "No good metadata fetch for 6 hours: a certificate rollover would be missed (/readyz says stale after 24 h). ${local.message}"
  query               = "max(last_15m):max:ssogate.idp_metadata_age_seconds{${var.scope}} > 21600"
  require_full_window = true
  monitor_thresholds {
    warning  = 10800
    critical = 21600
  }
}

# The agent cannot scrape /metrics: every other monitor goes blind.  No data
# at all (the agent sidecar gone, or the whole service) is an alert too.
resource "datadog_monitor" "scrape" {
  name              = "ssogate: metrics not scraped"
  type              = "service check"
  priority          = 1
  message           = "The Datadog agent sidecar cannot read 127.0.0.1:9090/metrics, or reports nothing at all. ${local.message} ${local.page}"
  query             = "\"ssogate.openmetrics.health\".over(\"${var.scope}\").by(\"endpoint\").last(3).count_by_status()"
  notify_no_data    = true
  no_data_timeframe = 10
  monitor_thresholds {
    critical = 2
    ok       = 1
  }
}

# ---- the ALB in front (the AWS integration's metrics, alb_target_group set) ----
#
# CloudWatch reaches Datadog minutes late: evaluated 15 minutes behind.

resource "datadog_monitor" "alb_unhealthy_hosts" {
  count               = local.alb
  name                = "ssogate: ALB targets unhealthy"
  type                = "query alert"
  priority            = 2
  message             = "The ALB sees ssogate tasks failing /healthz for 10 minutes (a deploy's stopping tasks are deregistered, not unhealthy). ${local.message}"
  query               = "min(last_10m):max:aws.applicationelb.un_healthy_host_count{targetgroup:${var.alb_target_group}} >= 1"
  evaluation_delay    = 900
  require_full_window = true
  monitor_thresholds {
    critical = 1
  }
}

resource "datadog_monitor" "alb_no_healthy_hosts" {
  count               = local.alb
  name                = "ssogate: ALB has no healthy target"
  type                = "query alert"
  priority            = 1
  message             = "No ssogate task passes the ALB's health check: everyone gets 503 from the ALB. ${local.message} ${local.page}"
  query               = "max(last_5m):min:aws.applicationelb.healthy_host_count{targetgroup:${var.alb_target_group}} < 1"
  evaluation_delay    = 900
  require_full_window = true
  monitor_thresholds {
    critical = 1
  }
}

# 5xx the ALB made itself (no target, target reset, timeouts): ssogate's own
# counters never see them.  CloudWatch counts them per load balancer, not per
# target group: on an ALB shared with other apps, theirs count too.
resource "datadog_monitor" "alb_5xx" {
  count               = local.alb
  name                = "ssogate: ALB 5xx"
  type                = "query alert"
  priority            = 2
  message             = "The ALB itself answered 5xx (502: a target closed the connection, 503: no healthy target, 504: idle_timeout). ${local.message} ${local.page}"
  query               = "sum(last_10m):sum:aws.applicationelb.httpcode_elb_5xx{loadbalancer:${var.alb_load_balancer}}.as_count() / clamp_min(sum:aws.applicationelb.request_count{loadbalancer:${var.alb_load_balancer}}.as_count(), 100) > 0.05"
  evaluation_delay    = 900
  require_full_window = false
  monitor_thresholds {
    warning  = 0.02
    critical = 0.05
  }
  lifecycle {
    precondition {
      condition     = can(regex("^app/[^/]+/[0-9a-f]+$", var.alb_load_balancer))
      error_message = "alb_target_group is set: set alb_load_balancer too, app/<name>/<id> (aws_lb.arn_suffix)."
    }
  }
}
