# One dashboard: traffic, errors, logins, the store, certificates.

resource "datadog_dashboard" "ssogate" {
  title       = "ssogate"
  description = "SAML gate in front of Redash (docs/monitoring.md)"
  layout_type = "ordered"

  widget {
    timeseries_definition {
      title = "Requests by status class"
      request {
        q            = "sum:ssogate.requests.count{${var.scope}} by {class}.as_count()"
        display_type = "bars"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Request duration (average, s)"
      request {
        q = "sum:ssogate.request_duration_seconds.sum{${var.scope}}.as_count() / sum:ssogate.request_duration_seconds.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.upstream_duration_seconds.sum{${var.scope}}.as_count() / sum:ssogate.upstream_duration_seconds.count{${var.scope}}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Upstream errors by kind"
      request {
        q            = "sum:ssogate.upstream_errors.count{${var.scope}} by {kind}.as_count()"
        display_type = "bars"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Logins: started, succeeded, failed by reason"
      request {
        q = "sum:ssogate.logins_started.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.logins_succeeded.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.logins_failed.count{${var.scope}} by {reason}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Refused: rate limited, spoofed identity headers, client timeouts"
      request {
        q = "sum:ssogate.rate_limited.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.spoofed_headers.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.client_timeouts.count{${var.scope}}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Store: errors and average call time (s)"
      request {
        q = "sum:ssogate.store_errors.count{${var.scope}}.as_count()"
      }
      request {
        q = "sum:ssogate.store_duration_seconds.sum{${var.scope}}.as_count() / sum:ssogate.store_duration_seconds.count{${var.scope}}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Open connections and JWT signatures"
      request {
        q = "sum:ssogate.open_connections{${var.scope}}"
      }
      request {
        q = "sum:ssogate.jwt_signatures.count{${var.scope}}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Readiness: tasks ready, and each check (1 passes)"
      request {
        q = "sum:ssogate.ready{${var.scope}}"
      }
      request {
        q = "min:ssogate.ready_check{${var.scope}} by {check}"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Tasks by version and commit (a rolling deploy shows two)"
      request {
        q            = "sum:ssogate.build_info{${var.scope}} by {version,commit}"
        display_type = "bars"
      }
    }
  }

  widget {
    query_value_definition {
      title = "IdP certificate: days to expiry"
      request {
        q          = "min:ssogate.idp_cert_days_to_expiry{${var.scope}}"
        aggregator = "min"
      }
    }
  }
}
