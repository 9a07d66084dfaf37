"""Checks an ECS task definition the way RegisterTaskDefinition would, offline:
botocore's own parameter validation against the ECS service model's input
shape (types, required members, enums), then the Fargate rules that schema
cannot express.  Not a substitute for registering it; a superset of what the
schema says, taken from AWS's "Amazon ECS task definition parameters for
Fargate" and "Task CPU and memory" pages.

problems(td) -> list of strings, empty when the definition passes.
"""
import json
import re

import botocore.session
from botocore.validate import ParamValidator

# AWS: "Task CPU and memory" (Linux, platform 1.4.0).
FARGATE_MEMORY = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}
MAX_STOP_TIMEOUT = 120  # Fargate's ceiling for stopTimeout
CONDITIONS = {"START", "COMPLETE", "SUCCESS", "HEALTHY"}


def schema_problems(td):
    """botocore's validation of the RegisterTaskDefinition input."""
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(td, shape)
    return [report.generate_report()] if report.has_errors() else []


def _listen_address(value):
    host, _, port = value.rpartition(":")
    return host.strip("[]"), port


def fargate_problems(td):
    out = []
    if td.get("networkMode") != "awsvpc":
        out.append("networkMode must be awsvpc on Fargate")
    if "FARGATE" not in td.get("requiresCompatibilities", []):
        out.append("requiresCompatibilities must contain FARGATE")
    try:
        cpu, memory = int(td["cpu"]), int(td["memory"])
    except (KeyError, ValueError):
        out.append("task-level cpu and memory are required on Fargate (as CPU units and MiB)")
    else:
        if memory not in FARGATE_MEMORY.get(cpu, []):
            out.append("cpu %d / memory %d is not a Fargate pair" % (cpu, memory))
    containers = td.get("containerDefinitions", [])
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        out.append("container names repeat: %s" % names)
    volumes = {v.get("name") for v in td.get("volumes", [])}
    by_name = {c.get("name"): c for c in containers}
    essential = [c for c in containers if c.get("essential", True)]
    if not essential:
        out.append("no essential container")
    for c in containers:
        name = c.get("name")
        if "stopTimeout" in c and not 0 < c["stopTimeout"] <= MAX_STOP_TIMEOUT:
            out.append("%s: stopTimeout %s is above Fargate's %d s" % (name, c["stopTimeout"], MAX_STOP_TIMEOUT))
        if "logConfiguration" not in c:
            out.append("%s: no logConfiguration (its output goes nowhere on Fargate)" % name)
        for m in c.get("mountPoints", []):
            if m.get("sourceVolume") not in volumes:
                out.append("%s: mountPoint on undeclared volume %s" % (name, m.get("sourceVolume")))
        for pm in c.get("portMappings", []):
            if "hostPort" in pm and pm["hostPort"] != pm.get("containerPort"):
                out.append("%s: hostPort must equal containerPort in awsvpc" % name)
        for dep in c.get("dependsOn", []):
            target = by_name.get(dep.get("containerName"))
            if target is None:
                out.append("%s: dependsOn unknown container %s" % (name, dep.get("containerName")))
                continue
            if dep.get("condition") not in CONDITIONS:
                out.append("%s: dependsOn condition %s" % (name, dep.get("condition")))
            if dep.get("condition") in ("SUCCESS", "COMPLETE") and target.get("essential", True):
                out.append("%s waits for %s to exit, but %s is essential: its exit stops the task"
                           % (name, target["name"], target["name"]))
            if dep.get("condition") == "HEALTHY" and "healthCheck" not in target:
                out.append("%s waits for %s to be HEALTHY, which has no healthCheck" % (name, target["name"]))
        if c.get("logConfiguration", {}).get("logDriver") == "awsfirelens":
            routers = [o for o in containers if "firelensConfiguration" in o]
            if not routers:
                out.append("%s: awsfirelens without a container that has firelensConfiguration" % name)
            elif not any(d.get("containerName") == routers[0]["name"] for d in c.get("dependsOn", [])):
                out.append("%s: logs through FireLens but does not wait for %s to START"
                           % (name, routers[0]["name"]))
        env = {e["name"]: e.get("value", "") for e in c.get("environment", [])}
        if "SSOGATE_METRICS_LISTEN" in env or c.get("name") == "ssogate":
            host, _ = _listen_address(env.get("SSOGATE_METRICS_LISTEN", "0.0.0.0:9090"))
            if host not in ("127.0.0.1", "::1", "localhost"):
                out.append("%s: metrics listen on %s, not loopback: the whole VPC could read them"
                           % (name, env.get("SSOGATE_METRICS_LISTEN", "(image default 0.0.0.0:9090)")))
        for pm in c.get("portMappings", []):
            if pm.get("containerPort") == 9090:
                out.append("%s: port 9090 (metrics) is mapped" % name)
    # A cycle in dependsOn never starts.
    def reaches(start, goal, seen=()):
        for d in by_name.get(start, {}).get("dependsOn", []):
            n = d.get("containerName")
            if n == goal or (n not in seen and reaches(n, goal, seen + (n,))):
                return True
        return False
    for n in names:
        if reaches(n, n):
            out.append("%s: dependsOn cycle" % n)
    return out


def problems(td):
    return schema_problems(td) + fargate_problems(td)


def from_terraform_plan(plan, address):
    """The RegisterTaskDefinition input of an aws_ecs_task_definition in a
    `terraform show -json` plan.  Values known only after apply (the
    execution role's ARN) become placeholders of the right type."""
    for rc in plan["resource_changes"]:
        if rc["address"] == address:
            after = rc["change"]["after"]
            break
    else:
        raise KeyError(address)
    td = {
        "family": after["family"],
        "containerDefinitions": json.loads(after["container_definitions"]),
        "requiresCompatibilities": after["requires_compatibilities"],
        "networkMode": after["network_mode"],
        "cpu": after["cpu"],
        "memory": after["memory"],
        "executionRoleArn": after.get("execution_role_arn") or "arn:aws:iam::123456789012:role/known-after-apply",
        "volumes": [{"name": v["name"]} for v in after.get("volume") or []],
    }
    for rp in after.get("runtime_platform") or []:
        td["runtimePlatform"] = {"operatingSystemFamily": rp["operating_system_family"],
                                 "cpuArchitecture": rp["cpu_architecture"]}
    return td


def container(td, name):
    return next(c for c in td["containerDefinitions"] if c["name"] == name)


def environment(c):
    return {e["name"]: e["value"] for e in c.get("environment", [])}


SETTING = re.compile(r"^SSOGATE_[A-Z0-9]+_[A-Z0-9_]+$")
