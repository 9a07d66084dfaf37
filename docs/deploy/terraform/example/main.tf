# ssogate in front of Redash: the module call.  Redash's server keeps running
# as before, now reached only by ssogate (its security group is passed in and
# gets the one ingress rule it needs).

module "ssogate" {
  source = "../aws"

  # Unique per deployment: staging is name = "ssogate-staging",
  # datadog_env = "staging" (the plan refuses a staging env under
  # production's names).
  name        = var.name
  datadog_env = var.env

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
  app              = "redash" # the default, spelled out: public paths, API keys, logout

  # Redash's user names follow the Google display name ([redash] sync_names,
  # docs/redash.md): the SAML app maps it to displayName, and the Redash
  # admin's API key comes from Parameter Store, never from the environment.
  name_attribute = "displayName"
  extra_environment = {
    SSOGATE_REDASH_API_URL    = "http://redash-server.${var.service_discovery_namespace_name}:5000"
    SSOGATE_REDASH_SYNC_NAMES = "true"
  }
  extra_secrets = {
    SSOGATE_REDASH_API_KEY = var.redash_api_key_parameter_arn
  }

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
