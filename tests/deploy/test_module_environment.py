"""What the module and docs/deploy/task-definition.json deploy, as the real
binary reads it: the ssogate container's environment exactly as the planned
task definition (terraform show -json) and the JSON file give it, secrets and
key files replaced by test values (task_environment.py), through
`ssogate --check`.  The Redash preset must be what runs (issue 24: without
SSOGATE_UPSTREAM_APP=redash every ?api_key=, shared dashboard and /static/
got 401 at cutover).

The module is also planned on its own as a staging deployment with every
optional setting (tests/deploy/module-staging.tfvars): names of its own,
groups, IdP-initiated sign-in, the session page, a digest-pinned image and a
Secrets Manager secret; and with the inputs its checks must refuse.
"""
import json
import os
import re
from urllib.parse import urlsplit

import pytest

import ecs_rules
import task_environment
from deploy_support import HERE, TASK_DEFINITION, it
from terraform_plan import Workspace, example_plan, resource_change, skip_unless_terraform_and_aws_provider

no_process_outlives_its_test = it.no_process_outlives_its_test

STAGING_TFVARS = os.path.join(HERE, "module-staging.tfvars")
EXAMPLE_TASK = "module.ssogate.aws_ecs_task_definition.ssogate"
STAGING_TASK = "aws_ecs_task_definition.ssogate"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return example_plan(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def staging_workspace(tmp_path_factory):
    skip_unless_terraform_and_aws_provider()
    return Workspace(tmp_path_factory.mktemp("tf-staging"))


@pytest.fixture(scope="module")
def staging(staging_workspace):
    return staging_workspace.plan("aws", "-var-file=" + STAGING_TFVARS)


def checked(td, tmp_path):
    """--check on the task's ssogate environment: (summary, env).  The
    configuration must be accepted whole; the one problem allowed is the
    upstream's name, which resolves only inside the VPC."""
    env = task_environment.render(td, tmp_path)
    code, out, err = task_environment.check(env)
    assert "config: (environment only)" in out, "the configuration was refused:\n" + out + err
    host = urlsplit(env["SSOGATE_UPSTREAM_URL"]).hostname
    if code != 0:
        assert "FAILED: 1 problem(s)" in out, out
        assert "upstream name %s did not resolve" % host in out, out
    return task_environment.summary(out), env


def assert_redash_preset(s):
    assert s["upstream"]["app"] == "redash"
    assert s["access"]["app_credentials"] == "redash", "Redash API keys would get 401"
    assert {"/static/", "/api/config"} <= set(s["access"]["public_paths"].split()), s["access"]
    assert s["session"]["logout_paths"] == "/logout"
    assert s["session"]["app_cookies"] == "session remember_token"
    assert s["upstream"]["health_path"] == "/ping"


@pytest.mark.parametrize("source", ["module", "task-definition.json"])
def test_the_task_runs_the_redash_preset(source, request, tmp_path):
    if source == "module":
        td = ecs_rules.from_terraform_plan(request.getfixturevalue("example"), EXAMPLE_TASK)
    else:
        with open(TASK_DEFINITION) as f:
            td = json.load(f)
    s, env = checked(td, tmp_path)
    assert env["SSOGATE_UPSTREAM_APP"] == "redash"
    assert_redash_preset(s)
    # The example's name sync: the admin key comes in as a secret, never as text.
    assert s["saml"]["name_attribute"] == "displayName"
    assert s["redash"]["sync"] == "names on, groups off"
    assert s["redash"]["api_key"] == "set (value hidden)"
    gate = ecs_rules.container(td, "ssogate")
    assert "SSOGATE_REDASH_API_KEY" in {x["name"] for x in gate["secrets"]}
    assert "SSOGATE_REDASH_API_KEY" not in ecs_rules.environment(gate)


def test_a_staging_module_with_every_setting_runs_what_it_was_given(staging, tmp_path):
    td = ecs_rules.from_terraform_plan(staging, STAGING_TASK)
    assert ecs_rules.problems(td) == []
    s, env = checked(td, tmp_path)
    assert_redash_preset(s)
    assert s["saml"]["groups_attribute"] == "groups"
    assert s["saml"]["name_attribute"] == "displayName"
    assert s["saml"]["clock_skew"].endswith("idp-initiated allowed"), s["saml"]
    assert s["session"]["lifetime"].endswith("session page on"), s["session"]
    assert s["access"]["allowed_groups"] == "data@example.com"
    assert s["redash"]["sync"] == "names off, groups on"
    assert s["redash"]["api_key"] == "set (value hidden)"
    assert s["store"]["url"] == "memory"


def test_a_staging_module_takes_none_of_productions_names(staging):
    named = {}
    for rc in staging["resource_changes"]:
        after = rc["change"]["after"]
        for key in ("name", "family", "name_prefix"):
            if isinstance(after.get(key), str):
                named[rc["address"] + "." + key] = after[key]
    assert len(named) >= 8, named
    assert all("ssogate-staging" in v for v in named.values()), named


def test_a_secrets_manager_secret_is_read_by_its_own_arn(staging):
    td = ecs_rules.from_terraform_plan(staging, STAGING_TASK)
    value_from = next(x["valueFrom"] for x in ecs_rules.container(td, "ssogate")["secrets"]
                      if x["name"] == "SSOGATE_REDASH_API_KEY")
    assert value_from.endswith(":api_key::"), "ECS gets the JSON key as given"
    policy = json.loads(resource_change(staging, "aws_iam_role_policy.execution")["policy"])
    stmts = {x["Sid"]: x for x in policy["Statement"]}
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ssogate-staging/redash-AbCdEf"
    assert stmts["SecretsManager"]["Resource"] == [secret]
    assert stmts["SecretsManager"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert not any("secretsmanager" in arn for arn in stmts["Secrets"]["Resource"])
    assert set(stmts["DecryptSecrets"]["Condition"]["StringEquals"]["kms:ViaService"]) == {
        "ssm.eu-west-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com"}


def test_a_digest_pinned_image_is_tagged_with_the_version_given(staging):
    td = ecs_rules.from_terraform_plan(staging, STAGING_TASK)
    for name in ("ssogate", "log-router", "datadog-agent"):
        labels = ecs_rules.container(td, name)["dockerLabels"]
        assert labels["com.datadoghq.tags.env"] == "staging", name
        assert labels["com.datadoghq.tags.version"] == "0.2.0-rc.1", name
        assert labels["com.datadoghq.tags.service"] == "ssogate-staging", "out of production's monitors"
    options = ecs_rules.container(td, "ssogate")["logConfiguration"]["options"]
    assert options["dd_tags"] == "env:staging,version:0.2.0-rc.1"
    assert options["dd_service"] == "ssogate-staging"


BAD_PRECONDITIONS = """
name              = "ssogate"
groups_attribute  = null
datadog_version   = null
extra_environment = { SSOGATE_REDASH_API_KEY = "plaintext" }
"""

BAD_VARIABLES = """
name          = "ssogate-staging-with-a-name-far-too-long"
extra_secrets = { SSOGATE_REDASH_API_KEY = "plaintext-key" }
"""


@pytest.mark.parametrize("override,messages", [
    (BAD_PRECONDITIONS, ["name must differ per environment", "allowed_groups needs groups_attribute",
                         "pinned by digest only: set datadog_version",
                         "also set in the environment"]),
    (BAD_VARIABLES, ["name is 1 to 32 letters", "extra_secrets values are ARNs"]),
], ids=["preconditions", "variables"])
def test_the_module_refuses_what_would_break_a_deployment(staging, staging_workspace, override, messages):
    path = os.path.join(staging_workspace.tmp, "bad.tfvars")
    with open(path, "w") as f:
        f.write(override)
    done = staging_workspace.run("aws", "plan", "-input=false", "-var-file=" + STAGING_TFVARS,
                                 "-var-file=" + path, check=False)
    assert done.returncode != 0
    found = re.sub(r"\s+", " ", done.stderr.replace("│", " "))
    for m in messages:
        assert m in found, "not refused: %s\n%s" % (m, done.stderr)
