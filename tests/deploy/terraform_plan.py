"""The real Terraform, offline: a copy of docs/deploy/terraform in a temp dir,
`init` against the local provider mirror (/opt/tf-plugins, no registry), and
plans with a provider that asks AWS nothing (no credentials check, no account
id, no metadata API, no region check).  As root every command runs in an empty
network namespace, so a data source or anything else that needs AWS fails
instead of hanging on it.

example_plan() is the `terraform show -json` of the example root planned with
tests/deploy/example.tfvars, made once per pytest session and shared by the
test modules that read it.  Nothing is written into the checkout.
"""
import glob
import json
import os
import shutil
import subprocess

import pytest

from deploy_support import ROOT, TERRAFORM

MIRROR = os.environ.get("TEST_TF_PLUGIN_DIR", "/opt/tf-plugins")
TFVARS = os.path.join(ROOT, "tests", "deploy", "example.tfvars")
TERRAFORM_BIN = shutil.which("terraform")
TIMEOUT = 300  # seconds for any one terraform command (a plan takes ~10 s)

# What a root is given in CI: nothing that reaches AWS.
OFFLINE_PROVIDER = """
provider "aws" {
  region                      = var.region
  access_key                  = "offline-test"
  secret_key                  = "offline-test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
"""

needs_terraform = pytest.mark.skipif(TERRAFORM_BIN is None, reason="terraform not installed")


def has_provider(namespace, name):
    return bool(glob.glob(os.path.join(MIRROR, "registry.terraform.io", namespace, name, "*", "*")))


def skip_unless_terraform_and_aws_provider():
    if TERRAFORM_BIN is None:
        pytest.skip("terraform not installed")
    if not has_provider("hashicorp", "aws"):
        pytest.skip("no hashicorp/aws provider in %s" % MIRROR)


def isolated_network():
    """unshare -n when it works (root): the plan then cannot reach any network."""
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Workspace:
    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.tree = os.path.join(self.tmp, "terraform")
        shutil.copytree(TERRAFORM, self.tree)
        self.cli_config = os.path.join(self.tmp, "cli.tfrc")
        with open(self.cli_config, "w") as f:
            f.write('provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n'
                    '  direct {\n    exclude = ["*/*"]\n  }\n}\n' % MIRROR)
        self.offline = isolated_network()

    def write(self, subdir, name, text):
        with open(os.path.join(self.tree, subdir, name), "w") as f:
            f.write(text)

    def run(self, subdir, *args, check=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
        env.update(TF_CLI_CONFIG_FILE=self.cli_config, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
                   TF_DATA_DIR=os.path.join(self.tmp, "data-" + subdir), TF_INPUT="0",
                   AWS_EC2_METADATA_DISABLED="true")
        cmd = [TERRAFORM_BIN, *args, "-no-color"]
        if self.offline:
            cmd = ["unshare", "-n", *cmd]
        done = subprocess.run(cmd, cwd=os.path.join(self.tree, subdir), env=env, capture_output=True,
                              text=True, timeout=TIMEOUT)
        if check:
            assert done.returncode == 0, "terraform %s in %s failed:\n%s\n%s" % (
                " ".join(args), subdir, done.stdout[-4000:], done.stderr[-4000:])
        return done

    def plan(self, subdir, *args, check=True):
        """init + plan of a root (with the offline provider); the plan's JSON,
        or the failed run when check is False and the plan fails."""
        self.write(subdir, "zz_offline_override.tf", OFFLINE_PROVIDER)
        self.run(subdir, "init", "-backend=false", "-input=false")
        done = self.run(subdir, "plan", "-input=false", "-out=plan.bin", *args, check=check)
        if done.returncode != 0:
            return done
        return json.loads(self.run(subdir, "show", "-json", "plan.bin").stdout)


_shared = {}


def example_plan(tmp_path_factory):
    """(workspace, plan JSON) of the example root with example.tfvars; once per session."""
    skip_unless_terraform_and_aws_provider()
    if "example" not in _shared:
        ws = Workspace(tmp_path_factory.mktemp("tf"))
        _shared["example"] = (ws, ws.plan("example", "-var-file=" + TFVARS))
    return _shared["example"]


def resource_change(plan, address):
    return next(rc["change"]["after"] for rc in plan["resource_changes"] if rc["address"] == address)


def module_config(plan, module="ssogate"):
    """The module's configuration as the plan records it (resources with
    their depends_on and the references of every expression)."""
    return plan["configuration"]["root_module"]["module_calls"][module]["module"]
