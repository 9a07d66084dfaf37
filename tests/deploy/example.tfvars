# Dummy values for planning docs/deploy/terraform/example offline
# (tests/deploy/test_terraform.py).  Shaped like real IDs and ARNs; none exists.
region                             = "eu-west-1"
vpc_id                             = "vpc-0123456789abcdef0"
private_subnet_ids                 = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
cluster_arn                        = "arn:aws:ecs:eu-west-1:123456789012:cluster/redash"
cluster_name                       = "redash"
alb_security_group_id              = "sg-0123456789abcdef0"
listener_arn                       = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shared/0123456789abcdef/0123456789abcdef"
listener_rule_priority             = 120
public_url                         = "https://redash.example.com"
ssogate_image                      = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ssogate:0.1.0"
allowed_domains                    = ["example.com"]
service_discovery_namespace_id     = "ns-0123456789abcdef"
service_discovery_namespace_name   = "redash.local"
session_secret_parameter_arn       = "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/session-secret"
idp_metadata_parameter_arn         = "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/idp-metadata"
jwt_key_parameter_arns             = ["arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/jwt-key-2026", "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/jwt-key-2027"]
store_url_parameter_arn            = "arn:aws:ssm:eu-west-1:123456789012:parameter/ssogate/store-url"
redis_security_group_id            = "sg-0123456789abcdef1"
datadog_api_key_parameter_arn      = "arn:aws:ssm:eu-west-1:123456789012:parameter/datadog/api-key"
kms_key_arn                        = "arn:aws:kms:eu-west-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef"
redash_database_url_parameter_arn  = "arn:aws:ssm:eu-west-1:123456789012:parameter/redash/database-url"
redash_redis_url_parameter_arn     = "arn:aws:ssm:eu-west-1:123456789012:parameter/redash/redis-url"
redash_cookie_secret_parameter_arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/redash/cookie-secret"
redash_secret_key_parameter_arn    = "arn:aws:ssm:eu-west-1:123456789012:parameter/redash/secret-key"
redash_execution_role_arn          = "arn:aws:iam::123456789012:role/redash-execution"
