# What the rest of your configuration needs from the module: above all the
# Redash server task's REDASH_JWT_* environment, which must match ssogate's
# settings byte for byte (issuer, audience, header name).

output "redash_jwt_environment" {
  description = "Add to the Redash server task's environment (and every Redash container that serves HTTP)."
  value = [
    { name = "REDASH_JWT_LOGIN_ENABLED", value = "true" },
    { name = "REDASH_JWT_AUTH_PUBLIC_CERTS_URL", value = local.jwks_url },
    { name = "REDASH_JWT_AUTH_ISSUER", value = lookup(local.ssogate_environment, "SSOGATE_HEADERS_JWT_ISSUER", var.public_url) },
    { name = "REDASH_JWT_AUTH_AUDIENCE", value = var.jwt_audience },
    { name = "REDASH_JWT_AUTH_ALGORITHMS", value = "RS256" },
    { name = "REDASH_JWT_AUTH_HEADER_NAME", value = lookup(local.ssogate_environment, "SSOGATE_HEADERS_JWT", "X-Ssogate-Assertion") },
  ]
}

output "security_group_id" {
  description = "ssogate's security group."
  value       = aws_security_group.ssogate.id
}

output "service_name" {
  description = "The ECS service."
  value       = aws_ecs_service.ssogate.name
}

output "task_definition_arn" {
  description = "The task definition revision in use."
  value       = aws_ecs_task_definition.ssogate.arn
}

output "target_group_arn" {
  description = "ssogate's target group."
  value       = aws_lb_target_group.ssogate.arn
}

output "execution_role_arn" {
  description = "The task execution role."
  value       = aws_iam_role.execution.arn
}

output "container_definitions" {
  description = "The task's container definitions (JSON), as registered."
  value       = aws_ecs_task_definition.ssogate.container_definitions
}
