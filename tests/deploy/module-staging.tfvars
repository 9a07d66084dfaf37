# The ssogate module planned on its own (tests/deploy/test_module_environment.py)
# as a staging deployment next to production, with every optional setting the
# example leaves out: its own names, groups, IdP-initiated sign-in, the session
# page, an image pinned by digest, a secret from Secrets Manager (a JSON key of
# it), no store, no Cloud Map.  Dummy values shaped like real ones.
name                   = "ssogate-staging"
datadog_env            = "staging"
datadog_version        = "0.2.0-rc.1"
region                 = "eu-west-1"
vpc_id                 = "vpc-0123456789abcdef0"
private_subnet_ids     = ["subnet-0123456789abcdef0"]
alb_security_group_id  = "sg-0123456789abcdef0"
listener_arn           = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shared/0123456789abcdef/0123456789abcdef"
listener_rule_priority = 121
cluster_arn            = "arn:aws:ecs:eu-west-1:123456789012:cluster/redash-staging"
cluster_name           = "redash-staging"
min_capacity           = 1
image                  = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssogate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
public_url             = "https://redash-staging.example.com"
upstream_url           = "http://redash-server.redash-staging.local:5000"
allowed_groups         = ["data@example.com"]
groups_attribute       = "groups"
name_attribute         = "displayName"
allow_idp_initiated    = true
session_page           = true
extra_environment = {
  SSOGATE_REDASH_API_URL     = "http://redash-server.redash-staging.local:5000"
  SSOGATE_REDASH_SYNC_GROUPS = "true"
  SSOGATE_REDASH_GROUP_MAP   = "data@example.com=Data"
}
extra_secrets = {
  SSOGATE_REDASH_API_KEY = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ssogate-staging/redash-AbCdEf:api_key::"
}
session_secret_parameter_arn  = "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate-staging/session-secret"
idp_metadata_parameter_arn    = "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate-staging/idp-metadata"
jwt_key_parameter_arns        = ["arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate-staging/jwt-key-2026"]
datadog_api_key_parameter_arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/datadog/api-key"
kms_key_arn                   = "arn:aws:kms:eu-west-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef"
redash_security_group_id      = "sg-0123456789abcdef2"
