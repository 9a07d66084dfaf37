# The Redash server's side: a security group that only ssogate may enter
# (the module adds that rule), and the REDASH_JWT_* environment next to
# Redash's own.  Only the server container is shown; workers and the
# scheduler serve no HTTP and need no JWT settings.

resource "aws_security_group" "redash_server" {
  name        = "redash-server"
  description = "Redash server: in from ssogate only"
  vpc_id      = var.vpc_id
}

# Redash reaches its database, Redis and data sources, and ssogate's JWKS.
resource "aws_vpc_security_group_egress_rule" "redash_all" {
  security_group_id = aws_security_group.redash_server.id
  description       = "Redash to its database, Redis, data sources"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_task_definition" "redash_server" {
  family                   = "redash-server"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "1024"
  memory                   = "2048"
  execution_role_arn       = var.redash_execution_role_arn

  container_definitions = jsonencode([{
    name         = "redash-server"
    image        = var.redash_image
    essential    = true
    command      = ["server"]
    portMappings = [{ containerPort = 5000, protocol = "tcp" }]
    environment = concat(
      [
        { name = "REDASH_WEB_WORKERS", value = "4" },
        { name = "REDASH_LOG_LEVEL", value = "INFO" },
      ],
      module.ssogate.redash_jwt_environment,
    )
    secrets = [
      { name = "REDASH_DATABASE_URL", valueFrom = var.redash_database_url_parameter_arn },
      { name = "REDASH_REDIS_URL", valueFrom = var.redash_redis_url_parameter_arn },
      { name = "REDASH_COOKIE_SECRET", valueFrom = var.redash_cookie_secret_parameter_arn },
      { name = "REDASH_SECRET_KEY", valueFrom = var.redash_secret_key_parameter_arn },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = "/ecs/redash"
        awslogs-region        = var.region
        awslogs-stream-prefix = "redash-server"
      }
    }
  }])
}

output "redash_jwt_environment" {
  value = module.ssogate.redash_jwt_environment
}
