"""docs/deploy/terraform checked offline with the real Terraform: fmt, init
against the local provider mirror (/opt/tf-plugins, no registry), validate,
and a plan of the example root with dummy variables (tests/deploy/example.tfvars)
and a provider that asks AWS nothing (no credentials check, no account id,
no metadata API, no region check).  As root the plan runs in an empty network
namespace, so a data source or anything else that needs AWS fails the test
instead of hanging on it.  The plan's task definitions then go through the
same ECS checks as docs/deploy/task-definition.json (ecs_rules.py).

Nothing is written into the checkout: the tree is copied to a temp dir, and
TF_DATA_DIR and the lock file live there.
"""
import glob
import json
import os
import re
import shutil
import subprocess

import pytest

import ecs_rules
from deploy_support import ROOT, TERRAFORM, TASK_DEFINITION, it

no_process_outlives_its_test = it.no_process_outlives_its_test

MIRROR = os.environ.get("TEST_TF_PLUGIN_DIR", "/opt/tf-plugins")
TFVARS = os.path.join(ROOT, "tests", "deploy", "example.tfvars")
TERRAFORM_BIN = shutil.which("terraform")
TIMEOUT = 300  # seconds for any one terraform command (the plan takes ~10 s)

# What the example root's provider is given in CI: nothing that reaches AWS.
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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    if TERRAFORM_BIN is None:
        pytest.skip("terraform not installed")
    if not has_provider("hashicorp", "aws"):
        pytest.skip("no hashicorp/aws provider in %s" % MIRROR)
    return Workspace(tmp_path_factory.mktemp("tf"))


@pytest.fixture(scope="module")
def plan(workspace):
    with open(os.path.join(workspace.tree, "example", "zz_offline_override.tf"), "w") as f:
        f.write(OFFLINE_PROVIDER)
    workspace.run("example", "init", "-backend=false", "-input=false")
    workspace.run("example", "plan", "-input=false", "-var-file=" + TFVARS, "-out=plan.bin")
    shown = workspace.run("example", "show", "-json", "plan.bin")
    return json.loads(shown.stdout)


def tf_files():
    return sorted(glob.glob(os.path.join(TERRAFORM, "**", "*.tf"), recursive=True))


@needs_terraform
def test_terraform_fmt_check():
    done = subprocess.run([TERRAFORM_BIN, "fmt", "-check", "-recursive", "-diff", "-no-color", TERRAFORM],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, CHECKPOINT_DISABLE="1"))
    assert done.returncode == 0, "not formatted as terraform fmt would:\n" + done.stdout


def test_every_root_and_module_pins_its_providers_major():
    dirs = sorted({os.path.dirname(p) for p in tf_files()})
    assert {os.path.basename(d) for d in dirs} >= {"aws", "datadog", "example"}
    for d in dirs:
        text = "".join(open(p).read() for p in glob.glob(os.path.join(d, "*.tf")))
        block = re.search(r"required_providers\s*\{(.*?)\n  \}", text, re.S)
        assert block, "%s: no required_providers" % d
        for name, body in re.findall(r"(\w+)\s*=\s*\{([^}]*)\}", block.group(1)):
            assert re.search(r'source\s*=\s*"[\w-]+/%s"' % name, body, re.I), (d, name)
            version = re.search(r'version\s*=\s*"([^"]*)"', body)
            assert version and re.search(r"<\s*\d+\.0\.0|~>\s*\d+\.\d+", version.group(1)), \
                "%s: provider %s without a pinned major: %s" % (d, name, body)


def test_no_data_source_needs_aws():
    """IDs come in as variables: a plan reads nothing from the account."""
    for path in tf_files():
        found = re.findall(r'^\s*data\s+"([^"]+)"', open(path).read(), re.M)
        assert not found, "%s reads %s at plan time; pass the value as a variable" % (path, found)


def test_aws_module_inits_from_the_mirror_and_validates(workspace):
    workspace.run("aws", "init", "-backend=false", "-input=false")
    done = workspace.run("aws", "validate")
    assert "The configuration is valid" in done.stdout


def test_example_plans_offline_with_every_piece(plan, workspace):
    assert workspace.offline or os.geteuid() != 0, "as root the plan must run without a network"
    types = {}
    for rc in plan["resource_changes"]:
        assert rc["change"]["actions"] == ["create"], rc["address"]
        types.setdefault(rc["type"], []).append(rc["address"])
    for needed in ("aws_ecs_service", "aws_ecs_task_definition", "aws_iam_role", "aws_iam_role_policy",
                   "aws_lb_target_group", "aws_lb_listener_rule", "aws_appautoscaling_target",
                   "aws_appautoscaling_policy", "aws_security_group", "aws_vpc_security_group_ingress_rule",
                   "aws_cloudwatch_log_group", "aws_service_discovery_service"):
        assert needed in types, "the plan has no %s" % needed


def planned(plan, address):
    return next(rc["change"]["after"] for rc in plan["resource_changes"] if rc["address"] == address)


def test_planned_service_survives_autoscaling_and_rolls_back(plan):
    svc = planned(plan, "module.ssogate.aws_ecs_service.ssogate")
    assert svc["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]
    assert svc["launch_type"] == "FARGATE"
    assert svc["network_configuration"][0]["assign_public_ip"] is False
    config = plan["configuration"]["root_module"]["module_calls"]["ssogate"]["module"]
    service = next(r for r in config["resources"] if r["address"] == "aws_ecs_service.ssogate")
    assert "aws_lb_listener_rule.ssogate" in service.get("depends_on", [])
    ecs_tf = open(os.path.join(TERRAFORM, "aws", "ecs.tf")).read()
    assert re.search(r"ignore_changes\s*=\s*\[desired_count\]", ecs_tf)


def test_planned_listener_rule_is_host_bound(plan):
    rule = planned(plan, "module.ssogate.aws_lb_listener_rule.ssogate")
    assert rule["priority"] == 120
    hosts = [c["host_header"][0]["values"] for c in rule["condition"] if c.get("host_header")]
    assert hosts == [["redash.example.com"]]
    tg = planned(plan, "module.ssogate.aws_lb_target_group.ssogate")
    assert tg["health_check"][0]["path"] == "/healthz" and tg["target_type"] == "ip"


def test_planned_execution_role_reads_exactly_the_named_parameters(plan):
    policy = json.loads(planned(plan, "module.ssogate.aws_iam_role_policy.execution")["policy"])
    stmts = {s["Sid"]: s for s in policy["Statement"]}
    with open(TFVARS) as f:
        tfvars = f.read()
    wanted = set(re.findall(r'"(arn:aws:ssm:[^"]+parameter/(?:ssogate|datadog)/[^"]+)"', tfvars))
    assert set(stmts["Secrets"]["Resource"]) == wanted
    assert stmts["Secrets"]["Action"] == ["ssm:GetParameters"]
    assert stmts["DecryptSecrets"]["Action"] == ["kms:Decrypt"]
    assert stmts["DecryptSecrets"]["Resource"].startswith("arn:aws:kms:")
    assert stmts["EcrPull"]["Resource"] == "arn:aws:ecr:eu-west-1:123456789012:repository/ssogate"


@pytest.mark.parametrize("address", ["module.ssogate.aws_ecs_task_definition.ssogate",
                                     "aws_ecs_task_definition.redash_server"])
def test_planned_task_definitions_pass_the_ecs_checks(plan, address):
    td = ecs_rules.from_terraform_plan(plan, address)
    assert ecs_rules.problems(td) == []


def test_terraform_and_json_task_definitions_agree(plan):
    tf = ecs_rules.from_terraform_plan(plan, "module.ssogate.aws_ecs_task_definition.ssogate")
    with open(TASK_DEFINITION) as f:
        js = json.load(f)
    assert sorted(c["name"] for c in tf["containerDefinitions"]) == sorted(c["name"] for c in js["containerDefinitions"])
    a, b = ecs_rules.container(tf, "ssogate"), ecs_rules.container(js, "ssogate")
    assert set(ecs_rules.environment(a)) == set(ecs_rules.environment(b))
    assert {s["name"] for s in a["secrets"]} == {s["name"] for s in b["secrets"]}
    canon = lambda v: sorted(json.dumps(x, sort_keys=True) for x in v) if isinstance(v, list) else v
    for key in ("stopTimeout", "dependsOn", "mountPoints", "portMappings", "logConfiguration"):
        assert canon(a[key]) == canon(b[key]), key
    assert json.loads(a["dockerLabels"]["com.datadoghq.ad.checks"]) == \
        json.loads(b["dockerLabels"]["com.datadoghq.ad.checks"])
    init_tf, init_js = ecs_rules.container(tf, "ssogate-keys"), ecs_rules.container(js, "ssogate-keys")
    assert init_tf["user"] == init_js["user"] == "0"
    # Same command shape; the plan's tfvars has two JWT keys (a rotation), the JSON one.
    assert init_tf["command"][:2] == init_js["command"][:2] == ["sh", "-c"]
    assert init_tf["command"][2].startswith(init_js["command"][2].split(" && printf")[0])


def test_a_bad_variable_stops_the_plan(plan, workspace):
    done = workspace.run("example", "plan", "-input=false", "-var-file=" + TFVARS,
                         "-var", "listener_rule_priority=0", check=False)
    assert done.returncode != 0 and "priority is between 1 and 50000" in done.stderr


def test_datadog_root_is_formatted_and_validated_where_possible(tmp_path):
    d = os.path.join(TERRAFORM, "datadog")
    if TERRAFORM_BIN is None:
        pytest.skip("terraform not installed")
    done = subprocess.run([TERRAFORM_BIN, "fmt", "-check", "-recursive", "-no-color", d],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, CHECKPOINT_DISABLE="1"))
    assert done.returncode == 0, done.stdout
    if not has_provider("datadog", "datadog"):
        print("datadog: provider not available offline: fmt checked, not validated")
        pytest.skip("datadog: provider not available offline: fmt checked, not validated")
    ws = Workspace(tmp_path)
    ws.run("datadog", "init", "-backend=false", "-input=false")
    ws.run("datadog", "validate")


def test_planned_task_with_two_jwt_keys_starts_in_a_simulated_task(plan, tmp_path):
    """The Terraform task (two JWT keys: a rotation's overlap) run like
    task-definition.json in test_image_contract.py: init step as planned,
    ssogate from exactly the planned environment."""
    import test_image_contract as contract
    reason = contract.can_simulate()
    if reason:
        pytest.skip(reason)
    td = ecs_rules.from_terraform_plan(plan, "module.ssogate.aws_ecs_task_definition.ssogate")
    volume = contract.fargate_volume(os.path.join(str(tmp_path), "volume-keys"))
    secrets = contract.stub_secrets(td)
    result = contract.run_sim(str(tmp_path), {"hosts": contract.HOSTS, "services": contract.side_services(),
                                              "containers": contract.task_spec(td, volume, secrets)})
    assert result["containers"]["ssogate-keys"]["exit"] == 0, contract.log_of(result, "ssogate-keys")
    files = contract.files_in(volume)
    assert set(files) == {"idp-metadata.xml", "jwt-0.key", "jwt-1.key"}
    assert all(v == (0o600, 10001, 10001) for v in files.values()), files
    gate = result["containers"]["ssogate"]
    assert gate["ready"], contract.log_of(result, "ssogate")
    probes = gate["probes"]
    assert probes["http://127.0.0.1:8080/readyz"][0] == 200, probes
    jwks = json.loads(probes["http://127.0.0.1:8080/ssogate/jwks.json"][1])
    assert len(jwks["keys"]) == 2, "both keys of the overlap are published"
    assert gate["stop_exit"] == 0
