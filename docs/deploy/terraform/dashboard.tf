# A Datadog dashboard for ssogate's metrics (OpenMetrics check, namespace "ssogate").
# Written for the Datadog provider 3.x; NOT applied or validated here.

resource "datadog_dashboard" "ssogate" {
  title       = "ssogate"
  description = "SAML gate in front of Redash"
  layout_type = "ordered"

  widget {
    timeseries_definition {
      title = "Requests by status class"
      request {
        q            = "sum:ssogate.requests.count{*} by {class}.as_rate()"
        display_type = "bars"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Upstream errors by kind"
      request {
        q = "sum:ssogate.upstream_errors.count{*} by {kind}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Logins: started, succeeded, failed by reason"
      request {
        q = "sum:ssogate.logins_started.count{*}.as_count()"
      }
      request {
        q = "sum:ssogate.logins_succeeded.count{*}.as_count()"
      }
      request {
        q = "sum:ssogate.logins_failed.count{*} by {reason}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Rate-limited login requests and JWT signatures"
      request {
        q = "sum:ssogate.rate_limited.count{*}.as_count()"
      }
      request {
        q = "sum:ssogate.jwt_signatures.count{*}.as_count()"
      }
    }
  }

  widget {
    timeseries_definition {
      title = "Open connections"
      request {
        q = "sum:ssogate.open_connections{*}"
      }
    }
  }

  widget {
    query_value_definition {
      title = "Reloads failed (24h)"
      request {
        q          = "sum:ssogate.reloads.count{result:failed}.as_count()"
        aggregator = "sum"
      }
    }
  }

  widget {
    query_value_definition {
      title = "IdP certificate: days to expiry"
      request {
        q          = "min:ssogate.idp_cert_days_to_expiry{*}"
        aggregator = "min"
      }
    }
  }
}
