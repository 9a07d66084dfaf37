"""docs/deploy/terraform checked offline with the real Terraform
(terraform_plan.py): fmt, init against the local provider mirror, validate,
and a plan of the example root with dummy variables (tests/deploy/example.tfvars).
The plan's task definitions then go through the same ECS checks as
docs/deploy/task-definition.json (ecs_rules.py); the plan's own dependency
view shows the service is created after, and destroyed before, every
permission and network rule its tasks need.
"""
import glob
import json
import os
import re
import subprocess

import pytest

import ecs_rules
from deploy_support import TERRAFORM, TASK_DEFINITION, it
from terraform_plan import (TERRAFORM_BIN, TFVARS, Workspace, example_plan, has_provider, module_config,
                            needs_terraform, resource_change, skip_unless_terraform_and_aws_provider)

no_process_outlives_its_test = it.no_process_outlives_its_test


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return example_plan(tmp_path_factory)


@pytest.fixture(scope="module")
def workspace(example):
    return example[0]


@pytest.fixture(scope="module")
def plan(example):
    return example[1]


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


planned = resource_change


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


# What a task needs from before it starts until after it has stopped: the
# execution role and its permissions (image pull, secrets, the sidecars'
# logs), ssogate's security group and every security-group rule (in from the
# ALB, out to Redash, the store and 443).
NEEDED_BY_TASKS = {"aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment", "aws_iam_policy",
                   "aws_security_group", "aws_vpc_security_group_ingress_rule",
                   "aws_vpc_security_group_egress_rule", "aws_security_group_rule"}
SERVICE = "module.ssogate.aws_ecs_service.ssogate"


def needed_by_tasks(plan, module="module.ssogate"):
    """From the plan: every resource of those types the module creates."""
    return sorted({"%s.%s.%s" % (rc["module_address"], rc["type"], rc["name"]) for rc in plan["resource_changes"]
                   if rc.get("module_address") == module and rc["type"] in NEEDED_BY_TASKS})


def dependencies(workspace, subdir, node):
    """Everything node depends on in Terraform's own graph (`terraform graph`:
    resources, with the edges through locals and references resolved), the
    order apply creates in and, reversed, destroy deletes in."""
    dot = workspace.run(subdir, "graph").stdout
    # Terraform before 1.7 prints every node as "[root] ADDRESS (expand)".
    node_name = lambda n: re.sub(r"^\[root\] | \((expand|close)\)$", "", n)
    edges = {}
    for a, b in re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', dot, re.M):
        edges.setdefault(node_name(a), set()).add(node_name(b))
    assert node in edges, "no %s in the graph:\n%s" % (node, dot)
    seen, pending = set(), [node]
    while pending:
        for b in edges.get(pending.pop(), ()):
            if b not in seen:
                seen.add(b)
                pending.append(b)
    return seen


def missing_dependencies(workspace, plan):
    return [r for r in needed_by_tasks(plan) if r not in dependencies(workspace, "example", SERVICE)]


def test_the_service_comes_after_and_goes_before_everything_its_tasks_need(plan, workspace):
    """Issue 18: applied against an AWS simulator, the service was created
    while the execution role's policy and the rules were still being made,
    and destroyed after them (its tasks drained with no 443 out and no log
    permission).  The list is read from the plan, so a rule or policy added
    later without depends_on fails here."""
    needed = needed_by_tasks(plan)
    for r in ("aws_iam_role_policy.execution", "aws_vpc_security_group_ingress_rule.from_alb",
              "aws_vpc_security_group_egress_rule.alb_to_ssogate", "aws_vpc_security_group_egress_rule.to_redash",
              "aws_vpc_security_group_egress_rule.https", "aws_vpc_security_group_egress_rule.to_store"):
        assert "module.ssogate." + r in needed, needed
    assert missing_dependencies(workspace, plan) == []


NEW_PERMISSIONS = """
resource "aws_vpc_security_group_egress_rule" "zz_dns_over_tls" {
  security_group_id = aws_security_group.ssogate.id
  ip_protocol       = "tcp"
  from_port         = 853
  to_port           = 853
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_iam_role_policy_attachment" "zz_more" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchLogsReadOnlyAccess"
}
"""


def test_a_rule_or_policy_added_without_depends_on_is_caught(tmp_path):
    skip_unless_terraform_and_aws_provider()
    ws = Workspace(tmp_path)
    ws.write("aws", "zz_new_permissions.tf", NEW_PERMISSIONS)
    plan = ws.plan("example", "-var-file=" + TFVARS)
    assert missing_dependencies(ws, plan) == [
        "module.ssogate.aws_iam_role_policy_attachment.zz_more",
        "module.ssogate.aws_vpc_security_group_egress_rule.zz_dns_over_tls"]


def test_the_module_lets_the_alb_out_to_ssogate(plan):
    """An ALB group made for Redash alone allows only 5000 out: the module
    owns the ALB's egress to ssogate's port (requests and health checks)."""
    with open(TFVARS) as f:
        alb_sg = re.search(r'^alb_security_group_id\s*=\s*"([^"]+)"', f.read(), re.M).group(1)
    out = planned(plan, "module.ssogate.aws_vpc_security_group_egress_rule.alb_to_ssogate")
    into = planned(plan, "module.ssogate.aws_vpc_security_group_ingress_rule.from_alb")
    port = planned(plan, "module.ssogate.aws_lb_target_group.ssogate")["port"]
    for rule in (out, into):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", port, port), rule
    assert out["security_group_id"] == alb_sg
    assert into["referenced_security_group_id"] == alb_sg
    # The other end of each rule is ssogate's group (an ID known after apply).
    config = {r["address"]: r for r in module_config(plan)["resources"]}
    for address, side in (("aws_vpc_security_group_egress_rule.alb_to_ssogate", "referenced_security_group_id"),
                          ("aws_vpc_security_group_ingress_rule.from_alb", "security_group_id")):
        assert "aws_security_group.ssogate" in config[address]["expressions"][side]["references"], address


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
    assert stmts["DecryptSecrets"]["Condition"]["StringEquals"]["kms:ViaService"] == ["ssm.eu-west-1.amazonaws.com"]
    assert "SecretsManager" not in stmts, "no Secrets Manager secret in the example"
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
    # The same settings, value for value, except the JWT keys (two in the plan: a rotation).
    env_a, env_b = ecs_rules.environment(a), ecs_rules.environment(b)
    assert set(env_a) == set(env_b)
    assert {k: v for k, v in env_a.items() if k != "SSOGATE_HEADERS_JWT_KEY"} == \
        {k: v for k, v in env_b.items() if k != "SSOGATE_HEADERS_JWT_KEY"}
    assert {s["name"] for s in a["secrets"]} == {s["name"] for s in b["secrets"]}
    canon = lambda v: sorted(json.dumps(x, sort_keys=True) for x in v) if isinstance(v, list) else v
    for key in ("stopTimeout", "dependsOn", "mountPoints", "portMappings", "logConfiguration"):
        assert canon(a[key]) == canon(b[key]), key
    assert json.loads(a["dockerLabels"].pop("com.datadoghq.ad.checks")) == \
        json.loads(b["dockerLabels"].pop("com.datadoghq.ad.checks"))
    assert a["dockerLabels"] == b["dockerLabels"]
    for name in ("log-router", "datadog-agent"):
        side_tf, side_js = ecs_rules.container(tf, name), ecs_rules.container(js, name)
        for key in ("image", "essential", "environment", "dockerLabels", "firelensConfiguration"):
            assert canon(side_tf.get(key)) == canon(side_js.get(key)), (name, key)
    init_tf, init_js = ecs_rules.container(tf, "ssogate-keys"), ecs_rules.container(js, "ssogate-keys")
    assert init_tf["user"] == init_js["user"] == "0"
    # Same command shape; the plan's tfvars has two JWT keys (a rotation), the JSON one.
    assert init_tf["command"][:2] == init_js["command"][:2] == ["sh", "-c"]
    assert init_tf["command"][2].startswith(init_js["command"][2].split(" && printf")[0])


def test_planned_task_tags_env_service_version_and_parses_json_logs(plan):
    """Datadog's unified service tags on every container (docker labels: on
    Fargate the agent reads them, not other containers' environment), in
    ssogate's environment and on its logs; the FireLens router parses each
    line as JSON (aws-for-fluent-bit's own configs/parse-json.conf)."""
    with open(TFVARS) as f:
        image = re.search(r'^ssogate_image\s*=\s*"([^"]+)"', f.read(), re.M).group(1)
    tags = {"env": "production", "service": "ssogate", "version": image.rsplit(":", 1)[1]}
    td = ecs_rules.from_terraform_plan(plan, "module.ssogate.aws_ecs_task_definition.ssogate")
    for name in ("ssogate", "log-router", "datadog-agent"):
        labels = ecs_rules.container(td, name)["dockerLabels"]
        assert {k: labels.get("com.datadoghq.tags." + k) for k in tags} == tags, name
    gate = ecs_rules.container(td, "ssogate")
    env = ecs_rules.environment(gate)
    assert {k: env.get("DD_" + k.upper()) for k in tags} == tags
    assert ecs_rules.environment(ecs_rules.container(td, "datadog-agent"))["DD_ENV"] == tags["env"]
    options = gate["logConfiguration"]["options"]
    assert options["dd_service"] == tags["service"] and options["dd_source"] == "ssogate"
    assert dict(t.split(":", 1) for t in options["dd_tags"].split(",")) == \
        {"env": tags["env"], "version": tags["version"]}
    assert env["SSOGATE_LOG_FORMAT"] == "json"
    router = ecs_rules.container(td, "log-router")["firelensConfiguration"]
    assert router["type"] == "fluentbit"
    assert router["options"]["config-file-type"] == "file"
    assert router["options"]["config-file-value"] == "/fluent-bit/configs/parse-json.conf"


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
    # What FireLens's parse-json filter gets: one JSON object per line, else
    # a line reaches Datadog as an unparsed string.
    # (tini's warning, every line of which names it, comes only here: in the
    # simulation tini is not PID 1, on Fargate it is.)
    lines = [l for l in contract.log_of(result, "ssogate").splitlines()
             if l.strip() and "tini" not in l.lower()]
    assert lines, "ssogate logged nothing"
    for line in lines:
        assert isinstance(json.loads(line), dict), line
