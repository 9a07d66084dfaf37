# An example root: the ssogate module next to the Redash server's side of the
# contract (its REDASH_JWT_* environment and security group).  Copy it into
# your Redash configuration; CI plans it with dummy variables
# (tests/deploy/example.tfvars).

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30.0, < 6.0.0"
    }
  }
}

provider "aws" {
  region = var.region
}
