"""docs/deploy/task-definition.json against the ECS API's own input schema
(botocore's parameter validation of RegisterTaskDefinition, from the service
model botocore ships) and the Fargate rules the schema cannot express
(ecs_rules.py); each rule is shown to fail on a definition that breaks it.
Also: every SSOGATE_* variable the task gives is a setting the binary knows
(ssogate --check with exactly that environment and stub files,
task_environment.py)."""
import copy

import pytest

import ecs_rules
import task_environment
from deploy_support import it, task_definition  # noqa: F401 (fixture)

no_process_outlives_its_test = it.no_process_outlives_its_test


def test_task_definition_passes_botocore_and_fargate_rules(task_definition):
    assert ecs_rules.problems(task_definition) == []


def test_the_schema_check_is_botocores_and_bites(task_definition):
    td = copy.deepcopy(task_definition)
    td["containerDefinitions"][1]["portMappings"][0]["containerPort"] = "8080"
    del td["family"]
    td["networkMode"] = "bridged"
    report = "\n".join(ecs_rules.schema_problems(td))
    assert "Missing required parameter" in report and "family" in report
    assert "containerPort" in report
    td = copy.deepcopy(task_definition)
    td["containerDefinitions"][0]["unknownThing"] = 1
    assert "Unknown parameter" in "\n".join(ecs_rules.schema_problems(td))


def mutate(td, name, fn):
    td = copy.deepcopy(td)
    fn(ecs_rules.container(td, name), td)
    return ecs_rules.fargate_problems(td)


@pytest.mark.parametrize("what,container,change,expected", [
    ("stopTimeout over 120", "ssogate", lambda c, td: c.update(stopTimeout=121), "stopTimeout 121"),
    ("metrics on every address", "ssogate",
     lambda c, td: next(e for e in c["environment"] if e["name"] == "SSOGATE_METRICS_LISTEN").update(value="0.0.0.0:9090"),
     "not loopback"),
    ("metrics left to the image default", "ssogate",
     lambda c, td: c.update(environment=[e for e in c["environment"] if e["name"] != "SSOGATE_METRICS_LISTEN"]),
     "image default"),
    ("no log configuration", "datadog-agent", lambda c, td: c.pop("logConfiguration"), "no logConfiguration"),
    ("dependency on a missing container", "ssogate",
     lambda c, td: c["dependsOn"].append({"containerName": "nope", "condition": "START"}), "unknown container nope"),
    ("essential init step", "ssogate-keys", lambda c, td: c.update(essential=True), "is essential"),
    ("FireLens without waiting for the router", "ssogate",
     lambda c, td: c.update(dependsOn=[d for d in c["dependsOn"] if d["containerName"] != "log-router"]),
     "does not wait for log-router"),
    ("bridge networking", "ssogate", lambda c, td: td.update(networkMode="bridge"), "awsvpc"),
    ("no Fargate pair", "ssogate", lambda c, td: td.update(cpu="512", memory="8192"), "not a Fargate pair"),
    ("EC2 only", "ssogate", lambda c, td: td.update(requiresCompatibilities=["EC2"]), "FARGATE"),
    ("undeclared volume", "ssogate", lambda c, td: td.update(volumes=[]), "undeclared volume"),
])
def test_each_fargate_rule_fails_when_broken(task_definition, what, container, change, expected):
    found = mutate(task_definition, container, change)
    assert any(expected in p for p in found), "%s not caught: %s" % (what, found)


def test_init_step_writes_as_root_and_hands_the_files_to_10001(task_definition):
    init = ecs_rules.container(task_definition, "ssogate-keys")
    assert init["user"] == "0", "Fargate's task volume is writable by root only"
    script = init["command"][2]
    assert init["command"][:2] == ["sh", "-c"]
    assert "umask 077" in script and "chown 10001:10001" in script
    assert init["essential"] is False
    gate = ecs_rules.container(task_definition, "ssogate")
    assert {"containerName": "ssogate-keys", "condition": "SUCCESS"} in gate["dependsOn"]
    assert all(m["readOnly"] for m in gate["mountPoints"])
    assert gate["stopTimeout"] > 20, "above drain_timeout (20 s), at most 120"


def test_timeouts_are_ordered_for_the_alb(task_definition):
    """upstream timeout < ALB idle timeout (310 s, docs/deploy/README.md) < client_timeout."""
    env = ecs_rules.environment(ecs_rules.container(task_definition, "ssogate"))
    upstream = int(env["SSOGATE_UPSTREAM_TIMEOUT"].rstrip("s"))
    client = int(env["SSOGATE_SERVER_CLIENT_TIMEOUT"].rstrip("s"))
    alb_idle = 310
    assert upstream < alb_idle < client
    drain = int(env["SSOGATE_SERVER_DRAIN_TIMEOUT"].rstrip("s"))
    assert drain < ecs_rules.container(task_definition, "ssogate")["stopTimeout"] <= 120


def test_every_variable_of_the_task_is_a_known_setting_or_a_datadog_tag(task_definition, tmp_path):
    env = task_environment.render(task_definition, tmp_path)
    datadog = {k for k in env if k.startswith("DD_")}
    assert datadog == {"DD_ENV", "DD_SERVICE", "DD_VERSION"}, "unified service tags only"
    assert all(ecs_rules.SETTING.match(k) for k in set(env) - datadog), sorted(env)
    # The upstream name does not resolve here; --check reports that as a
    # problem of reachability, after the configuration was accepted.
    code, out, err = task_environment.check(env)
    assert "not a setting of ssogate" not in out + err, out + err
    assert "config:" in out, "the configuration was not accepted:\n" + out + err
    # The same run with one unknown variable must fail on exactly that.
    env["SSOGATE_UPSTREAM_NOT_A_KEY"] = "1"
    code, out, err = task_environment.check(env)
    assert code != 0 and "SSOGATE_UPSTREAM_NOT_A_KEY is not a setting" in err
