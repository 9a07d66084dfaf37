# What the task runs with (settings, key files, timeouts) and who may talk to
# whom (security groups).  The task definition itself is in ecs.tf.

locals {
  host_headers = coalesce(var.host_headers, [regex("^https://([^/:]+)", var.public_url)[0]])

  # Key files: written by the init step (as root, umask 077, then chowned to
  # the image's uid 10001) into a task volume Fargate creates root-owned.
  key_dir  = "/keys"
  jwt_keys = [for i, arn in var.jwt_key_parameter_arns : { env = "JWT_KEY_${i}", file = "${local.key_dir}/jwt-${i}.key", arn = arn }]
  key_files = concat(
    [{ env = "IDP_METADATA", file = "${local.key_dir}/idp-metadata.xml", arn = var.idp_metadata_parameter_arn }],
    local.jwt_keys,
  )
  init_command = join(" && ", concat(
    ["set -eu", "umask 077"],
    [for f in local.key_files : "printf '%s\\n' \"$${${f.env}}\" > ${f.file}"],
    ["chown 10001:10001 ${join(" ", [for f in local.key_files : f.file])}"],
  ))

  # The ALB's idle timeout sits between the two: above the upstream timeout so
  # ssogate's own 504 reaches the user, below client_timeout so ssogate never
  # closes a keep-alive connection the ALB is about to reuse.
  client_timeout = var.alb_idle_timeout + 10

  ssogate_environment = merge(
    {
      SSOGATE_SERVER_LISTEN          = "0.0.0.0:8080"
      SSOGATE_SERVER_PUBLIC_URL      = var.public_url
      SSOGATE_SERVER_TRUSTED_PROXIES = "1"
      SSOGATE_SERVER_CLIENT_TIMEOUT  = "${local.client_timeout}s"
      SSOGATE_SERVER_DRAIN_TIMEOUT   = "${var.drain_timeout}s"
      SSOGATE_UPSTREAM_URL           = var.upstream_url
      SSOGATE_UPSTREAM_TIMEOUT       = "${var.upstream_timeout}s"
      # redash: Redash's logout path and cookies, its public paths (/static/,
      # /api/config) and its API keys (app_credentials) come from the preset.
      SSOGATE_UPSTREAM_APP = var.app
      # Cloud Map names change addresses on every Redash deployment.
      SSOGATE_UPSTREAM_RESOLVE_INTERVAL = "${var.upstream_resolve_interval}s"
      SSOGATE_SAML_IDP_METADATA         = "${local.key_dir}/idp-metadata.xml"
      SSOGATE_HEADERS_JWT_KEY           = join(" ", [for k in local.jwt_keys : k.file])
      SSOGATE_HEADERS_JWT_AUDIENCE      = var.jwt_audience
      SSOGATE_METRICS_LISTEN            = "127.0.0.1:9090"
      SSOGATE_LOG_FORMAT                = "json"
    },
    length(var.allowed_domains) > 0 ? { SSOGATE_ACCESS_ALLOWED_DOMAINS = join(" ", var.allowed_domains) } : {},
    length(var.allowed_groups) > 0 ? { SSOGATE_ACCESS_ALLOWED_GROUPS = join(" ", var.allowed_groups) } : {},
    var.groups_attribute == null ? {} : { SSOGATE_SAML_GROUPS_ATTRIBUTE = var.groups_attribute },
    var.name_attribute == null ? {} : { SSOGATE_SAML_NAME_ATTRIBUTE = var.name_attribute },
    # Only when on: the binary's default is off, and an unset key is one a
    # rollback to an older image cannot trip over.
    var.allow_idp_initiated ? { SSOGATE_SAML_ALLOW_IDP_INITIATED = "true" } : {},
    var.session_page ? { SSOGATE_SESSION_SESSION_PAGE = "true" } : {},
    var.extra_environment,
  )

  ssogate_secrets = concat(
    [{ name = "SSOGATE_SESSION_SECRET", valueFrom = var.session_secret_parameter_arn }],
    var.store_url_parameter_arn == null ? [] : [{ name = "SSOGATE_STORE_URL", valueFrom = var.store_url_parameter_arn }],
    [for k in sort(keys(var.extra_secrets)) : { name = k, valueFrom = var.extra_secrets[k] }],
  )

  # extra_secrets come from Parameter Store or Secrets Manager.  A Secrets
  # Manager valueFrom may add a JSON key and version after the secret's ARN
  # (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf:json-key::);
  # the policy names the secret itself: its first seven fields.
  extra_parameter_arns = [for arn in values(var.extra_secrets) : arn if can(regex("^arn:[^:]+:ssm:", arn))]
  secretsmanager_arns = distinct([
    for arn in values(var.extra_secrets) : join(":", slice(split(":", arn), 0, 7))
    if can(regex("^arn:[^:]+:secretsmanager:", arn))
  ])

  parameter_arns = distinct(compact(concat(
    [var.session_secret_parameter_arn, var.idp_metadata_parameter_arn, var.datadog_api_key_parameter_arn, var.store_url_parameter_arn],
    var.jwt_key_parameter_arns,
    local.extra_parameter_arns,
  )))

  # Datadog's unified service tags: the same env, service and version on
  # every container (docker labels: on Fargate the agent reads labels, not
  # other containers' environment), ssogate's environment and its logs.
  # "" when the image has no tag (pinned by digest only): refused in ecs.tf.
  image_tag       = try(regex("^(?:[^@]*/)?[^/:@]+:([^/:@]+)(?:@.*)?$", var.image)[0], "")
  datadog_version = var.datadog_version != null ? var.datadog_version : local.image_tag
  datadog_service = var.datadog_service != null ? var.datadog_service : var.name
  datadog_tags = {
    env     = var.datadog_env
    service = local.datadog_service
    version = local.datadog_version
  }
  datadog_labels      = { for k, v in local.datadog_tags : "com.datadoghq.tags.${k}" => v }
  datadog_environment = [for k in sort(keys(local.datadog_tags)) : { name = "DD_${upper(k)}", value = local.datadog_tags[k] }]

  # Fargate's CPU/memory pairs (AWS: "Task CPU and memory", Linux platform 1.4.0).
  fargate_memory = {
    "256"   = [512, 1024, 2048]
    "512"   = range(1024, 4097, 1024)
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }

  jwks_url = (var.service_discovery_namespace_id == null
    ? "${var.public_url}/ssogate/jwks.json"
  : "http://${var.name}.${var.service_discovery_namespace_name}:8080/ssogate/jwks.json")
}

resource "aws_security_group" "ssogate" {
  name        = var.name
  description = "ssogate tasks: in from the ALB (and Redash for the JWKS), out to Redash, the store and HTTPS"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.ssogate.id
  description                  = "ALB to ssogate"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = var.alb_security_group_id
}

# The other half: the ALB's own group must let it out to ssogate's port, for
# requests and health checks.  An ALB group made for Redash alone allows only
# 5000 out: without this rule no target turns healthy and every deployment
# rolls back.
resource "aws_vpc_security_group_egress_rule" "alb_to_ssogate" {
  security_group_id            = var.alb_security_group_id
  description                  = "ALB to ssogate (${var.name})"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.ssogate.id
}

# Redash fetches /ssogate/jwks.json straight from the tasks (Cloud Map name).
resource "aws_vpc_security_group_ingress_rule" "jwks_from_redash" {
  count                        = var.service_discovery_namespace_id == null ? 0 : 1
  security_group_id            = aws_security_group.ssogate.id
  description                  = "Redash server fetches the JWKS"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = var.redash_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "to_redash" {
  security_group_id            = aws_security_group.ssogate.id
  description                  = "ssogate to the Redash server"
  ip_protocol                  = "tcp"
  from_port                    = var.redash_port
  to_port                      = var.redash_port
  referenced_security_group_id = var.redash_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "to_store" {
  count                        = var.store_security_group_id == null ? 0 : 1
  security_group_id            = aws_security_group.ssogate.id
  description                  = "ssogate to the store (Redis)"
  ip_protocol                  = "tcp"
  from_port                    = var.store_port
  to_port                      = var.store_port
  referenced_security_group_id = var.store_security_group_id
}

# ECR, SSM, KMS, CloudWatch Logs and Datadog's intake: all HTTPS, through a NAT
# gateway or VPC endpoints.  (DNS to the VPC resolver is not filtered by
# security groups.)
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.ssogate.id
  description       = "HTTPS: ECR, SSM, logs, Datadog"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# Only ssogate may reach the Redash server: remove every other ingress on
# redash_port from Redash's security group (the ALB must not go to Redash).
resource "aws_vpc_security_group_ingress_rule" "redash_from_ssogate" {
  security_group_id            = var.redash_security_group_id
  description                  = "Redash server from ssogate only"
  ip_protocol                  = "tcp"
  from_port                    = var.redash_port
  to_port                      = var.redash_port
  referenced_security_group_id = aws_security_group.ssogate.id
}

# Redash out to ssogate for the JWKS (harmless if Redash's egress is open).
resource "aws_vpc_security_group_egress_rule" "redash_to_jwks" {
  count                        = var.service_discovery_namespace_id == null ? 0 : 1
  security_group_id            = var.redash_security_group_id
  description                  = "Redash server fetches ssogate's JWKS"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.ssogate.id
}

# The store: Redash's ElastiCache can serve as ssogate's store (another
# database number) once ssogate may reach it.
resource "aws_vpc_security_group_ingress_rule" "store_from_ssogate" {
  count                        = var.store_security_group_id == null ? 0 : 1
  security_group_id            = var.store_security_group_id
  description                  = "ssogate to the store (Redis)"
  ip_protocol                  = "tcp"
  from_port                    = var.store_port
  to_port                      = var.store_port
  referenced_security_group_id = aws_security_group.ssogate.id
}
