# ssogate in front of Redash on ECS Fargate.
# Written for the AWS provider 5.x; NOT applied or validated here.

variable "vpc_id" { type = string }
variable "private_subnet_ids" { type = list(string) }
variable "cluster_arn" { type = string }
variable "image" { type = string }             # e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssogate:0.1.0
variable "public_url" { type = string }        # https://redash.example.com
variable "redash_url" { type = string }        # http://redash-server.redash.local:5000
variable "redash_security_group_id" { type = string }
variable "alb_security_group_id" { type = string }
variable "alb_listener_arn" { type = string }
variable "store_url" { type = string }         # redis://<elasticache>:6379/1
variable "session_secret_arn" { type = string } # SSM SecureString
variable "idp_metadata_arn" { type = string }
variable "jwt_key_arn" { type = string }
variable "execution_role_arn" { type = string }
variable "task_role_arn" { type = string }

resource "aws_security_group" "ssogate" {
  name   = "ssogate"
  vpc_id = var.vpc_id

  ingress {
    description     = "traffic from the ALB only"
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [var.alb_security_group_id]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# Only ssogate may reach Redash: remove any other ingress on 5000.
resource "aws_security_group_rule" "redash_from_ssogate" {
  type                     = "ingress"
  from_port                = 5000
  to_port                  = 5000
  protocol                 = "tcp"
  security_group_id        = var.redash_security_group_id
  source_security_group_id = aws_security_group.ssogate.id
  description              = "Redash server from ssogate only"
}

resource "aws_lb_target_group" "ssogate" {
  name                 = "ssogate"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 20

  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener_rule" "ssogate" {
  listener_arn = var.alb_listener_arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ssogate.arn
  }

  condition {
    path_pattern {
      values = ["/*"]
    }
  }
}

resource "aws_ecs_task_definition" "ssogate" {
  family                   = "ssogate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "512"
  memory                   = "1024"
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  volume {
    name = "ssogate-keys"
  }

  container_definitions = jsonencode([
    {
      name      = "ssogate-keys"
      image     = "public.ecr.aws/docker/library/busybox:1.36"
      essential = false
      user      = "10001"
      command   = ["sh", "-c", "umask 077 && printf '%s' \"$IDP_METADATA\" > /keys/idp-metadata.xml && printf '%s' \"$JWT_KEY\" > /keys/jwt.key"]
      secrets = [
        { name = "IDP_METADATA", valueFrom = var.idp_metadata_arn },
        { name = "JWT_KEY", valueFrom = var.jwt_key_arn },
      ]
      mountPoints = [{ sourceVolume = "ssogate-keys", containerPath = "/keys" }]
    },
    {
      name        = "ssogate"
      image       = var.image
      essential   = true
      command     = []
      stopTimeout = 30
      dependsOn   = [{ containerName = "ssogate-keys", condition = "SUCCESS" }]
      portMappings = [{ containerPort = 8080, protocol = "tcp" }]
      environment = [
        { name = "SSOGATE_SERVER_PUBLIC_URL", value = var.public_url },
        { name = "SSOGATE_SERVER_TRUSTED_PROXIES", value = "1" },
        { name = "SSOGATE_UPSTREAM_URL", value = var.redash_url },
        { name = "SSOGATE_SAML_IDP_METADATA", value = "/keys/idp-metadata.xml" },
        { name = "SSOGATE_HEADERS_JWT_KEY", value = "/keys/jwt.key" },
        { name = "SSOGATE_ACCESS_ALLOWED_DOMAINS", value = "example.com" },
        { name = "SSOGATE_SESSION_LOGOUT_PATHS", value = "/logout" },
        { name = "SSOGATE_SESSION_APP_COOKIES", value = "session remember_token" },
        { name = "SSOGATE_STORE_URL", value = var.store_url },
        { name = "SSOGATE_METRICS_LISTEN", value = "127.0.0.1:9090" },
      ]
      secrets = [
        { name = "SSOGATE_SESSION_SECRET", valueFrom = var.session_secret_arn },
      ]
      mountPoints = [{ sourceVolume = "ssogate-keys", containerPath = "/keys", readOnly = true }]
      dockerLabels = {
        "com.datadoghq.ad.checks" = jsonencode({
          openmetrics = {
            instances = [{
              openmetrics_endpoint = "http://localhost:9090/metrics"
              namespace            = "ssogate"
              metrics              = ["ssogate_.*"]
            }]
          }
        })
      }
    },
  ])
}

resource "aws_ecs_service" "ssogate" {
  name                               = "ssogate"
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.ssogate.arn
  desired_count                      = 2
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 15

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.ssogate.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.ssogate.arn
    container_name   = "ssogate"
    container_port   = 8080
  }
}

resource "aws_appautoscaling_target" "ssogate" {
  service_namespace  = "ecs"
  resource_id        = "service/${element(split("/", var.cluster_arn), 1)}/${aws_ecs_service.ssogate.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 2
  max_capacity       = 8
}

resource "aws_appautoscaling_policy" "ssogate_cpu" {
  name               = "ssogate-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ssogate.service_namespace
  resource_id        = aws_appautoscaling_target.ssogate.resource_id
  scalable_dimension = aws_appautoscaling_target.ssogate.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
