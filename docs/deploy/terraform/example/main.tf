# ssogate in front of Redash: the module call.  Redash's server keeps running
# as before, now reached only by ssogate (its security group is passed in and
# gets the one ingress rule it needs).

module "ssogate" {
  source = "../aws"

  region                 = var.region
  vpc_id                 = var.vpc_id
  private_subnet_ids     = var.private_subnet_ids
  cluster_arn            = var.cluster_arn
  cluster_name           = var.cluster_name
  alb_security_group_id  = var.alb_security_group_id
  listener_arn           = var.listener_arn
  listener_rule_priority = var.listener_rule_priority
  alb_idle_timeout       = 310 # = idle_timeout of your aws_lb

  image            = var.ssogate_image
  public_url       = var.public_url
  upstream_url     = "http://redash-server.${var.service_discovery_namespace_name}:5000"
  upstream_timeout = 300
  allowed_domains  = var.allowed_domains

  service_discovery_namespace_id   = var.service_discovery_namespace_id
  service_discovery_namespace_name = var.service_discovery_namespace_name

  session_secret_parameter_arn  = var.session_secret_parameter_arn
  idp_metadata_parameter_arn    = var.idp_metadata_parameter_arn
  jwt_key_parameter_arns        = var.jwt_key_parameter_arns
  store_url_parameter_arn       = var.store_url_parameter_arn
  store_security_group_id       = var.redis_security_group_id
  datadog_api_key_parameter_arn = var.datadog_api_key_parameter_arn
  kms_key_arn                   = var.kms_key_arn

  redash_security_group_id = aws_security_group.redash_server.id
}
