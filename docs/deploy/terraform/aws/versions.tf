# The ssogate module: ECS Fargate service, task definition (init step, log
# router, Datadog agent), IAM execution role, target group and listener rule,
# security groups, autoscaling.  A module: it configures no provider; the
# example in ../example shows a root that calls it.  Checked in CI by
# tests/deploy/test_terraform.py and test_module_environment.py (init against
# a local provider mirror, validate, plans with dummy variables, the
# dependency graph, ssogate --check on the planned environment); not applied
# there.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30.0, < 6.0.0"
    }
  }
}
