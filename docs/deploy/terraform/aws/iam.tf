# The execution role: what ECS itself needs to start the task (pull the
# images, write the sidecars' logs, read the SecureStrings into the
# containers).  ssogate makes no AWS call, so the task has no task role.

locals {
  # 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssogate:0.1.0 -> its repository's ARN
  ecr                = try(regex("^(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com/([^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr == null ? null : "arn:aws:ecr:${local.ecr[1]}:${local.ecr[0]}:repository/${local.ecr[2]}"
}

resource "aws_iam_role" "execution" {
  name = "${var.name}-execution"
  tags = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "execution" {
  name = "${var.name}-execution"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "EcrLogin"
          Effect   = "Allow"
          Action   = ["ecr:GetAuthorizationToken"]
          Resource = "*"
        },
        {
          # By name, not by the group's ARN: the policy is then known at plan time.
          Sid      = "SidecarLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "arn:aws:logs:${var.region}:*:log-group:${aws_cloudwatch_log_group.this.name}:*"
        },
        {
          # ECS reads the `secrets` of every container with GetParameters.
          Sid      = "Secrets"
          Effect   = "Allow"
          Action   = ["ssm:GetParameters"]
          Resource = local.parameter_arns
        },
      ],
      # extra_secrets held in Secrets Manager: ECS reads them with GetSecretValue.
      length(local.secretsmanager_arns) == 0 ? [] : [{
        Sid      = "SecretsManager"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.secretsmanager_arns
      }],
      local.ecr_repository_arn == null ? [] : [{
        Sid      = "EcrPull"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = local.ecr_repository_arn
      }],
      # SecureStrings (and secrets) under a customer managed key: the role
      # must be allowed to decrypt with it (the AWS managed keys aws/ssm and
      # aws/secretsmanager need nothing here).
      var.kms_key_arn == null ? [] : [{
        Sid      = "DecryptSecrets"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = var.kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = concat(
          ["ssm.${var.region}.amazonaws.com"],
          length(local.secretsmanager_arns) == 0 ? [] : ["secretsmanager.${var.region}.amazonaws.com"],
        ) } }
      }],
    )
  })
}
