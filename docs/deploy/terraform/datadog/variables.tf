# Inputs of the Datadog root.

# The same variable, with the same default, as the aws module's: metrics,
# logs, dashboard and monitors then live on one site.
variable "datadog_site" {
  description = "Your Datadog site, as the aws module's datadog_site and the agent's DD_SITE (datadoghq.eu, datadoghq.com, us3.datadoghq.com, ...). null (in a .tfvars file): the provider reads DD_HOST, else uses https://api.datadoghq.com/."
  type        = string
  default     = "datadoghq.eu"
  validation {
    condition     = var.datadog_site == null || can(regex("^([a-z0-9-]+\\.)*(datadoghq\\.(com|eu)|ddog-gov\\.com)$", var.datadog_site))
    error_message = "datadog_site is a site name such as datadoghq.eu (no https://, no api. prefix)."
  }
}

variable "scope" {
  description = "Tag filter of every ssogate query (the service tag the task definition's docker label sets)."
  type        = string
  default     = "service:ssogate"
}

variable "notify" {
  description = "Who is told of every alert and warning, e.g. \"@slack-ops\"."
  type        = string
  default     = ""
}

variable "page" {
  description = "Who is paged, e.g. \"@pagerduty-redash\": only the monitors marked as pages, only when critical (a warning never pages)."
  type        = string
  default     = ""
}

variable "alb_target_group" {
  description = "ssogate's target group as the AWS integration tags it: its ARN suffix, targetgroup/<name>/<id> (aws_lb_target_group.arn_suffix). Empty: no ALB monitors."
  type        = string
  default     = ""
}

variable "alb_load_balancer" {
  description = "The ALB as the AWS integration tags it: its ARN suffix, app/<name>/<id> (aws_lb.arn_suffix). Needed with alb_target_group."
  type        = string
  default     = ""
}
