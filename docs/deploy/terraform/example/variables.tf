# The example's inputs: IDs and ARNs of what you already have (VPC, ALB,
# cluster, Redash, parameters).  No data source looks them up.

variable "name" {
  description = "ssogate's resource names: ssogate in production, ssogate-staging in staging."
  type        = string
  default     = "ssogate"
}

variable "env" {
  description = "Datadog's env tag: production, staging."
  type        = string
}

variable "region" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "cluster_arn" {
  type = string
}

variable "cluster_name" {
  type = string
}

variable "alb_security_group_id" {
  type = string
}

variable "listener_arn" {
  type = string
}

variable "listener_rule_priority" {
  type = number
}

variable "public_url" {
  type = string
}

variable "ssogate_image" {
  type = string
}

variable "redash_image" {
  type    = string
  default = "redash/redash:10.1.0.b50633"
}

variable "allowed_domains" {
  type = list(string)
}

variable "service_discovery_namespace_id" {
  description = "Redash's Cloud Map namespace; Redash's service is redash-server in it."
  type        = string
}

variable "service_discovery_namespace_name" {
  type = string
}

variable "session_secret_parameter_arn" {
  type = string
}

variable "idp_metadata_parameter_arn" {
  type = string
}

variable "jwt_key_parameter_arns" {
  type = list(string)
}

variable "store_url_parameter_arn" {
  type = string
}

variable "redis_security_group_id" {
  type = string
}

variable "redash_api_key_parameter_arn" {
  description = "SecureString holding the API key of the Redash admin user ssogate syncs names with."
  type        = string
}

variable "datadog_api_key_parameter_arn" {
  type = string
}

variable "kms_key_arn" {
  type    = string
  default = null
}

variable "redash_database_url_parameter_arn" {
  type = string
}

variable "redash_redis_url_parameter_arn" {
  type = string
}

variable "redash_cookie_secret_parameter_arn" {
  type = string
}

variable "redash_secret_key_parameter_arn" {
  type = string
}

variable "redash_execution_role_arn" {
  type = string
}
