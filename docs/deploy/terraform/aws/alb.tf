# The target group and the rule on your (possibly shared) HTTPS listener.
# The ALB itself is yours: set its idle_timeout to var.alb_idle_timeout.

resource "aws_lb_target_group" "ssogate" {
  name                 = var.name
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay
  tags                 = var.tags

  # /healthz never touches Redash, the store or the login rate limit.
  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# A host condition: other apps on the same listener keep their traffic.
resource "aws_lb_listener_rule" "ssogate" {
  listener_arn = var.listener_arn
  priority     = var.listener_rule_priority
  tags         = var.tags

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ssogate.arn
  }

  condition {
    host_header {
      values = local.host_headers
    }
  }
}
