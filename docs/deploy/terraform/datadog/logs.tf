# A log pipeline: Datadog's standard attributes from ssogate's access lines.
#
# The line keeps short flat keys (readable, cheap, the same in any log store;
# docs/monitoring.md lists them); this pipeline copies them to the names
# Datadog's facets, Log Explorer columns and out-of-the-box views expect.
# The HTTP status is the exception: "status" is reserved for the log level
# (Datadog's JSON preprocessing reads it; no attribute remapper may move it),
# so ssogate writes it twice, "status" and http.status_code, and the
# category and status remappers below set each line's level from the latter.
# The filter matches FireLens's dd_source (the task definition), whatever
# the service is named.

resource "datadog_logs_custom_pipeline" "ssogate_access" {
  name       = "ssogate access log"
  is_enabled = true
  filter {
    query = "source:ssogate @type:access"
  }

  processor {
    attribute_remapper {
      name                 = "client_ip -> network.client.ip"
      is_enabled           = true
      sources              = ["client_ip"]
      source_type          = "attribute"
      target               = "network.client.ip"
      target_type          = "attribute"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  processor {
    attribute_remapper {
      name                 = "method -> http.method"
      is_enabled           = true
      sources              = ["method"]
      source_type          = "attribute"
      target               = "http.method"
      target_type          = "attribute"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  processor {
    attribute_remapper {
      name                 = "path -> http.url_details.path"
      is_enabled           = true
      sources              = ["path"]
      source_type          = "attribute"
      target               = "http.url_details.path"
      target_type          = "attribute"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  processor {
    attribute_remapper {
      name                 = "request_id -> http.request_id"
      is_enabled           = true
      sources              = ["request_id"]
      source_type          = "attribute"
      target               = "http.request_id"
      target_type          = "attribute"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  processor {
    attribute_remapper {
      name                 = "user -> usr.email"
      is_enabled           = true
      sources              = ["user"]
      source_type          = "attribute"
      target               = "usr.email"
      target_type          = "attribute"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  processor {
    attribute_remapper {
      name                 = "bytes -> network.bytes_written"
      is_enabled           = true
      sources              = ["bytes"]
      source_type          = "attribute"
      target               = "network.bytes_written"
      target_type          = "attribute"
      target_format        = "integer"
      preserve_source      = true
      override_on_conflict = false
    }
  }
  # Datadog's duration is in nanoseconds.
  processor {
    arithmetic_processor {
      name               = "duration_ms -> duration (ns)"
      is_enabled         = true
      expression         = "duration_ms * 1000000"
      target             = "duration"
      is_replace_missing = false
    }
  }
  # The level of each line from its HTTP status, as Datadog's own web-server
  # integrations do: 2xx ok, 3xx notice, 4xx warning, 5xx error.
  processor {
    category_processor {
      name       = "http.status_code -> http.status_category"
      is_enabled = true
      target     = "http.status_category"
      category {
        name = "OK"
        filter {
          query = "@http.status_code:[100 TO 299]"
        }
      }
      category {
        name = "notice"
        filter {
          query = "@http.status_code:[300 TO 399]"
        }
      }
      category {
        name = "warning"
        filter {
          query = "@http.status_code:[400 TO 499]"
        }
      }
      category {
        name = "error"
        filter {
          query = "@http.status_code:[500 TO 599]"
        }
      }
    }
  }
  processor {
    status_remapper {
      name       = "http.status_category -> the log's level"
      is_enabled = true
      sources    = ["http.status_category"]
    }
  }
}

# Every ssogate line (access lines and the diagnostics on stderr) carries its
# own ISO 8601 "time", which Datadog's preprocessing does not read as the
# date (it reads timestamp, date, ...): without this the intake time is used.
resource "datadog_logs_custom_pipeline" "ssogate_time" {
  name       = "ssogate time"
  is_enabled = true
  filter {
    query = "source:ssogate"
  }
  processor {
    date_remapper {
      name       = "time -> the log's date"
      is_enabled = true
      sources    = ["time"]
    }
  }
}
