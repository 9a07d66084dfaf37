# Inputs of the Datadog root.

variable "datadog_api_url" {
  description = "API of your Datadog site: https://api.datadoghq.eu/ or https://api.datadoghq.com/"
  type        = string
  default     = "https://api.datadoghq.eu/"
}

variable "scope" {
  description = "Tag filter of every query (the service tag the task definition's docker label sets)."
  type        = string
  default     = "service:ssogate"
}

variable "notify" {
  description = "Who is told, e.g. \"@slack-ops @pagerduty-redash\"."
  type        = string
  default     = ""
}
