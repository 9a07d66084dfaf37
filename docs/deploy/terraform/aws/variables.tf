# Inputs of the ssogate module.  Everything the module needs from the rest of
# your account comes in here as IDs and ARNs, never through data sources: the
# module makes no AWS read at plan time (CI plans it with no network at all).

variable "name" {
  description = "Name of the service, task family, security group, target group, IAM role and log group. Unique per deployment in the account and region: staging is \"ssogate-staging\" (a name without datadog_env is refused outside production)."
  type        = string
  default     = "ssogate"

  validation {
    # The target group's limits: 32 characters, letters, digits and hyphens.
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$", var.name))
    error_message = "name is 1 to 32 letters, digits and hyphens, not starting or ending with a hyphen (a target group's name)."
  }
}

variable "region" {
  description = "Region of the cluster (used in the CloudWatch log configuration)."
  type        = string
}

# --- network -----------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the cluster, the ALB and Redash."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the tasks. They need a route to ECR, SSM, CloudWatch Logs and Datadog: a NAT gateway, or VPC endpoints for ECR (api, dkr, and the S3 gateway), SSM and logs, plus NAT or a proxy for Datadog's intake."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the ALB; the only source allowed to reach ssogate's port besides Redash's JWKS fetch. The module adds this group's egress rule to ssogate's port 8080 too."
  type        = string
}

variable "listener_arn" {
  description = "HTTPS listener of the ALB the rule is added to."
  type        = string
}

variable "listener_rule_priority" {
  description = "Priority of the listener rule; unique on the listener. Rules of other apps on a shared listener keep their own host conditions."
  type        = number

  validation {
    condition     = var.listener_rule_priority >= 1 && var.listener_rule_priority <= 50000
    error_message = "An ALB listener rule priority is between 1 and 50000."
  }
}

variable "host_headers" {
  description = "Host names the listener rule matches; default: the host of public_url."
  type        = list(string)
  default     = null
}

variable "alb_idle_timeout" {
  description = "idle_timeout (seconds) of your ALB. Must be above upstream_timeout (else the ALB answers 504 before ssogate does); client_timeout is set above it (else ssogate closes keep-alive connections the ALB still uses: 502). The idle timeout is the ALB's: on a shared ALB changing it changes it for every app behind it."
  type        = number
  default     = 310
}

# --- ECS ---------------------------------------------------------------------

variable "cluster_arn" {
  description = "ECS cluster (the one Redash runs in, or another in the same VPC)."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster (autoscaling names the service by cluster name)."
  type        = string
}

variable "image" {
  description = "ssogate image (docker/Dockerfile), pinned by tag or digest: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssogate:0.1.0"
  type        = string
}

variable "init_image" {
  description = "Image of the init step that writes the key files (needs sh, umask, chown)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.36"
}

variable "log_router_image" {
  description = "FireLens log router."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.3"
}

variable "datadog_agent_image" {
  description = "Datadog agent sidecar."
  type        = string
  default     = "public.ecr.aws/datadog/agent:7"
}

variable "cpu" {
  description = "Task CPU units (Fargate)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory in MiB; must be a Fargate pair with cpu."
  type        = number
  default     = 1024
}

variable "min_capacity" {
  description = "Fewest tasks (also the service's desired count at creation; autoscaling owns it after)."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Most tasks."
  type        = number
  default     = 8
}

variable "cpu_target" {
  description = "Target average CPU (%) of the target tracking policy."
  type        = number
  default     = 60
}

variable "deregistration_delay" {
  description = "Seconds the ALB keeps a stopping task's in-flight requests before ECS sends SIGTERM."
  type        = number
  default     = 30
}

variable "drain_timeout" {
  description = "ssogate's [server] drain_timeout in seconds: after SIGTERM, in-flight requests get this long."
  type        = number
  default     = 20
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL (Fargate allows at most 120); above drain_timeout."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "Fargate's stopTimeout is at most 120 seconds."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group of the sidecars (ssogate's own logs go to Datadog)."
  type        = number
  default     = 30
}

variable "service_discovery_namespace_id" {
  description = "Cloud Map private DNS namespace (e.g. Redash's). When set, ssogate registers as <name>.<namespace_name> and Redash fetches the JWKS from it directly; null: Redash fetches it through the ALB (needs a NAT route from Redash's subnets)."
  type        = string
  default     = null
}

variable "service_discovery_namespace_name" {
  description = "DNS name of that namespace (redash.local)."
  type        = string
  default     = null
}

# --- ssogate's settings ----------------------------------------------------------

variable "public_url" {
  description = "[server] public_url: what users type, https://redash.example.com"
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+$", var.public_url))
    error_message = "public_url is https://host, without a path."
  }
}

variable "upstream_url" {
  description = "[upstream] url: the Redash server, e.g. http://redash-server.redash.local:5000 (Cloud Map name)."
  type        = string
}

variable "upstream_timeout" {
  description = "[upstream] timeout in seconds: the longest Redash request."
  type        = number
  default     = 300
}

variable "upstream_resolve_interval" {
  description = "[upstream] resolve_interval in seconds: how often the upstream's name (Cloud Map) is resolved again; keep the record's TTL at or below it."
  type        = number
  default     = 10

  validation {
    condition     = var.upstream_resolve_interval >= 1
    error_message = "resolve_interval is at least 1 second."
  }
}

variable "app" {
  description = "[upstream] app: redash (its preset: logout path and cookies, public paths /static/ and /api/config, app_credentials redash for API keys) or generic (set those through extra_environment)."
  type        = string
  default     = "redash"

  validation {
    condition     = contains(["redash", "generic"], var.app)
    error_message = "app is redash or generic."
  }
}

variable "allowed_domains" {
  description = "[access] allowed_domains."
  type        = list(string)
  default     = []
}

variable "allowed_groups" {
  description = "[access] allowed_groups."
  type        = list(string)
  default     = []
}

variable "groups_attribute" {
  description = "[saml] groups_attribute: the SAML attribute with the groups (needed by allowed_groups and [redash] sync_groups). null: none."
  type        = string
  default     = null
}

variable "name_attribute" {
  description = "[saml] name_attribute: the SAML attribute with the display name (e.g. displayName). null: none."
  type        = string
  default     = null
}

variable "allow_idp_initiated" {
  description = "[saml] allow_idp_initiated: accept sign-ins started at the IdP (a tile in Google's app launcher)."
  type        = bool
  default     = false
}

variable "session_page" {
  description = "[session] session_page: serve /ssogate/session (who am I, sign out)."
  type        = bool
  default     = false
}

variable "extra_environment" {
  description = "More SSOGATE_* settings (name => value), e.g. { SSOGATE_SAML_GROUPS_ATTRIBUTE = \"groups\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^SSOGATE_[A-Z]+_[A-Z_]+$", k))])
    error_message = "extra_environment holds SSOGATE_<SECTION>_<KEY> variables only."
  }
}

variable "jwt_audience" {
  description = "[headers] jwt_audience = REDASH_JWT_AUTH_AUDIENCE."
  type        = string
  default     = "redash"
}

# --- secrets (SSM Parameter Store, SecureString) -----------------------------------

variable "extra_secrets" {
  description = "More SSOGATE_* settings from secrets (name => ARN of an SSM parameter or a Secrets Manager secret), e.g. { SSOGATE_REDASH_API_KEY = \"arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/redash-api-key\" }. The execution role may read exactly these."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_secrets) : can(regex("^SSOGATE_[A-Z0-9]+_[A-Z0-9_]+$", k))])
    error_message = "extra_secrets holds SSOGATE_<SECTION>_<KEY> variables only."
  }

  validation {
    condition     = length(setintersection(keys(var.extra_secrets), ["SSOGATE_SESSION_SECRET", "SSOGATE_STORE_URL"])) == 0
    error_message = "SSOGATE_SESSION_SECRET and SSOGATE_STORE_URL have their own variables (session_secret_parameter_arn, store_url_parameter_arn)."
  }

  validation {
    condition     = alltrue([for v in values(var.extra_secrets) : can(regex("^arn:aws[a-z-]*:(ssm:[a-z0-9-]+:[0-9]{12}:parameter/|secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)", v))])
    error_message = "extra_secrets values are ARNs of SSM parameters (arn:aws:ssm:...:parameter/...) or Secrets Manager secrets (arn:aws:secretsmanager:...:secret:...)."
  }
}

variable "session_secret_parameter_arn" {
  description = "SecureString holding [session] secret (one or more base64 secrets separated by spaces, the sealing one first)."
  type        = string
}

variable "idp_metadata_parameter_arn" {
  description = "Parameter holding the IdP metadata XML (GoogleIDPMetadata.xml); over 4 KB needs the Advanced tier."
  type        = string
}

variable "jwt_key_parameter_arns" {
  description = "SecureStrings holding the JWT signing keys (PEM), the signing one first. Two during a key rotation (docs/staging.md)."
  type        = list(string)

  validation {
    condition     = length(var.jwt_key_parameter_arns) >= 1 && length(var.jwt_key_parameter_arns) <= 2
    error_message = "One JWT key, or two during a rotation."
  }
}

variable "store_url_parameter_arn" {
  description = "SecureString holding [store] url (redis://:AUTH@host:6379/1, a database Redash does not use); null: per-task memory store (one task only)."
  type        = string
  default     = null
}

variable "store_security_group_id" {
  description = "Security group of the Redis/ElastiCache store; ssogate is allowed in on store_port."
  type        = string
  default     = null
}

variable "store_port" {
  description = "Port of the store."
  type        = number
  default     = 6379
}

variable "datadog_api_key_parameter_arn" {
  description = "SecureString holding the Datadog API key (agent and log router)."
  type        = string
}

variable "datadog_env" {
  description = "Datadog's env tag (production, staging): on every container, the logs and the agent. Outside production it must appear in name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]*$", var.datadog_env))
    error_message = "datadog_env is a lowercase tag value (letters, digits, _ . -)."
  }
}

variable "datadog_service" {
  description = "Datadog's service tag; the monitors and the dashboard filter on it (docs/monitoring.md). null: name, so a staging deployment (ssogate-staging) stays out of production's monitors until they filter on env too."
  type        = string
  default     = null
}

variable "datadog_version" {
  description = "Datadog's version tag; null: the image's tag (ssogate:0.1.0 -> 0.1.0). Needed when the image is pinned by digest only."
  type        = string
  default     = null
}

variable "datadog_site" {
  description = "Datadog site: datadoghq.com, datadoghq.eu, ..."
  type        = string
  default     = "datadoghq.eu"
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the SecureStrings; null when they use the AWS managed key aws/ssm."
  type        = string
  default     = null
}

# --- Redash -------------------------------------------------------------------------

variable "redash_security_group_id" {
  description = "Security group of the Redash server tasks: ssogate is allowed in on redash_port, Redash out to ssogate's port (JWKS)."
  type        = string
}

variable "redash_port" {
  description = "Port of the Redash server."
  type        = number
  default     = 5000
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
