# CPU target tracking: the request path is CPU-bound and streams bodies, so
# memory stays flat.  The service's desired_count is left to this (ecs.tf
# ignores it), so an apply never scales the service back.

resource "aws_appautoscaling_target" "ssogate" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.ssogate.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ssogate.service_namespace
  resource_id        = aws_appautoscaling_target.ssogate.resource_id
  scalable_dimension = aws_appautoscaling_target.ssogate.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
