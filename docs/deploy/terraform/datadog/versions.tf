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

# DD_API_KEY and DD_APP_KEY come from the environment.  The site is
# datadog_site (default datadoghq.eu, as the aws module's): api_url is
# derived from it, and an api_url that is set wins over DD_HOST, so DD_HOST
# counts only when datadog_site is null (then unset: the provider's default,
# https://api.datadoghq.com/).
provider "datadog" {
  api_url = var.datadog_site == null ? null : "https://api.${var.datadog_site}/"
}
