# ssogate's Datadog dashboard and monitors, a root of its own (its provider
# is not the AWS one).  Metric names are the ones the agent's OpenMetrics
# check (V2) produces from ssogate's /metrics with namespace "ssogate" and
# raw_metric_prefix "ssogate_" (the task definition's docker label):
# ssogate_requests_total -> ssogate.requests.count.  CI checks them against
# the binary's real /metrics (tests/deploy/test_datadog_names.py); it can only
# `terraform fmt` this directory, as the Datadog provider is not available
# offline there.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    datadog = {
      source  = "DataDog/datadog"
      version = ">= 3.40.0, < 4.0.0"
    }
  }
}

# DD_API_KEY, DD_APP_KEY (and DD_HOST for another site) come from the environment.
provider "datadog" {
  api_url = var.datadog_api_url
}
