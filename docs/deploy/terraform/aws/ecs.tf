# The task definition (four containers) and the service.
#
# Start order: the log router starts, the init step writes the key files and
# exits 0, then ssogate starts.  Stop order (scale-in, deployment): the ALB
# deregisters the task and keeps its in-flight requests for
# deregistration_delay, then ECS sends SIGTERM to ssogate first (containers
# stop in reverse dependency order), which drains for drain_timeout and
# exits 0; then the log router and the agent stop, after ssogate's last lines.

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

locals {
  sidecar_logs = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.this.name
      awslogs-region        = var.region
      awslogs-stream-prefix = var.name
    }
  }

  openmetrics_check = {
    openmetrics = {
      instances = [{
        openmetrics_endpoint = "http://127.0.0.1:9090/metrics"
        namespace            = "ssogate"
        raw_metric_prefix    = "ssogate_"
        metrics              = [".*"]
      }]
    }
  }

  containers = [
    {
      name      = "ssogate-keys"
      image     = var.init_image
      essential = false
      user      = "0"
      command   = ["sh", "-c", local.init_command]
      secrets   = [for f in local.key_files : { name = f.env, valueFrom = f.arn }]
      mountPoints = [{
        sourceVolume  = "keys"
        containerPath = local.key_dir
        readOnly      = false
      }]
      logConfiguration = local.sidecar_logs
    },
    {
      name        = "ssogate"
      image       = var.image
      essential   = true
      stopTimeout = var.stop_timeout
      dependsOn = [
        { containerName = "ssogate-keys", condition = "SUCCESS" },
        { containerName = "log-router", condition = "START" },
      ]
      portMappings = [{ containerPort = 8080, protocol = "tcp" }]
      environment = concat(
        [for k in sort(keys(local.ssogate_environment)) : { name = k, value = local.ssogate_environment[k] }],
        local.datadog_environment,
      )
      secrets = local.ssogate_secrets
      mountPoints = [{
        sourceVolume  = "keys"
        containerPath = local.key_dir
        readOnly      = true
      }]
      dockerLabels = merge(local.datadog_labels, {
        "com.datadoghq.ad.checks" = jsonencode(local.openmetrics_check)
      })
      logConfiguration = {
        logDriver = "awsfirelens"
        options = {
          Name       = "datadog"
          Host       = "http-intake.logs.${var.datadog_site}"
          TLS        = "on"
          compress   = "gzip"
          dd_service = local.datadog_service
          dd_source  = "ssogate"
          dd_tags    = "env:${var.datadog_env},version:${local.datadog_version}"
          provider   = "ecs"
        }
        secretOptions = [{ name = "apikey", valueFrom = var.datadog_api_key_parameter_arn }]
      }
    },
    {
      name      = "log-router"
      image     = var.log_router_image
      essential = true
      # parse-json.conf (shipped in the image, aws/aws-for-fluent-bit
      # configs/) parses each line's `log` field as JSON: ssogate's lines
      # (log format json) reach Datadog as attributes, not as a string.
      firelensConfiguration = {
        type = "fluentbit"
        options = {
          enable-ecs-log-metadata = "true"
          config-file-type        = "file"
          config-file-value       = "/fluent-bit/configs/parse-json.conf"
        }
      }
      dockerLabels     = local.datadog_labels
      logConfiguration = local.sidecar_logs
    },
    {
      name      = "datadog-agent"
      image     = var.datadog_agent_image
      essential = false
      environment = [
        { name = "ECS_FARGATE", value = "true" },
        { name = "DD_SITE", value = var.datadog_site },
        # The agent's own env tag, on everything it sends.
        { name = "DD_ENV", value = var.datadog_env },
      ]
      secrets          = [{ name = "DD_API_KEY", valueFrom = var.datadog_api_key_parameter_arn }]
      dockerLabels     = local.datadog_labels
      logConfiguration = local.sidecar_logs
    },
  ]
}

resource "aws_ecs_task_definition" "ssogate" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions    = jsonencode(local.containers)
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # A task-local volume: Fargate creates it empty, owned by root, mode 0755.
  volume {
    name = "keys"
  }

  lifecycle {
    precondition {
      condition     = contains(lookup(local.fargate_memory, tostring(var.cpu), []), var.memory)
      error_message = "cpu/memory is not a Fargate pair (AWS: Task CPU and memory)."
    }
    precondition {
      condition     = var.alb_idle_timeout > var.upstream_timeout
      error_message = "alb_idle_timeout must be above upstream_timeout, else the ALB cuts slow responses (504) before ssogate answers."
    }
    precondition {
      condition     = var.stop_timeout > var.drain_timeout
      error_message = "stop_timeout must be above drain_timeout, else SIGKILL cuts the drain."
    }
    precondition {
      condition     = local.datadog_version != ""
      error_message = "image is pinned by digest only: set datadog_version (Datadog's version tag) to the release it is."
    }
    precondition {
      condition     = length(setintersection(keys(local.ssogate_environment), keys(var.extra_secrets))) == 0
      error_message = "A name in extra_secrets is also set in the environment (extra_environment or a module variable): set it in one place."
    }
    precondition {
      condition     = length(var.allowed_groups) == 0 || var.groups_attribute != null
      error_message = "allowed_groups needs groups_attribute (the SAML attribute that carries the groups): without it every sign-in is refused."
    }
    precondition {
      condition     = contains(["production", "prod"], var.datadog_env) || strcontains(var.name, var.datadog_env)
      error_message = "name must differ per environment: the security group, IAM role, target group, log group and service take it. With datadog_env other than production, include it in name (e.g. \"ssogate-staging\")."
    }
  }
}

resource "aws_service_discovery_service" "ssogate" {
  count = var.service_discovery_namespace_id == null ? 0 : 1
  name  = var.name
  tags  = var.tags

  dns_config {
    namespace_id   = var.service_discovery_namespace_id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }
}

resource "aws_ecs_service" "ssogate" {
  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.ssogate.arn
  desired_count                      = var.min_capacity
  launch_type                        = "FARGATE"
  platform_version                   = "1.4.0"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  propagate_tags                     = "SERVICE"
  tags                               = var.tags

  # A revision whose tasks never get healthy is rolled back, not retried forever.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

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

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.ssogate
    content {
      registry_arn = service_registries.value.arn
    }
  }

  # Autoscaling owns the count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  # Created after, and destroyed before, everything its tasks need: the
  # target group attached to a listener, the execution role's policy (image
  # pull, secrets, the sidecars' logs) and every security-group rule (in from
  # the ALB, out to Redash, the store and 443).  Otherwise an apply starts
  # tasks that cannot start, and a destroy removes the 443 rule and the log
  # permission while the tasks still drain: their last lines never leave.
  # tests/deploy/test_terraform.py fails when a rule or policy is missing here.
  depends_on = [
    aws_lb_listener_rule.ssogate,
    aws_iam_role_policy.execution,
    aws_vpc_security_group_ingress_rule.from_alb,
    aws_vpc_security_group_egress_rule.alb_to_ssogate,
    aws_vpc_security_group_ingress_rule.jwks_from_redash,
    aws_vpc_security_group_egress_rule.to_redash,
    aws_vpc_security_group_egress_rule.to_store,
    aws_vpc_security_group_egress_rule.https,
    aws_vpc_security_group_ingress_rule.redash_from_ssogate,
    aws_vpc_security_group_egress_rule.redash_to_jwks,
    aws_vpc_security_group_ingress_rule.store_from_ssogate,
  ]
}
