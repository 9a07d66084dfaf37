"""The image's runtime contract, tested without a container engine: what
docs/deploy/task-definition.json and docker/compose.yml give the containers
(user, volumes, files, environment, entrypoint + command) is enough for
ssogate to start and serve, and the old shapes fail the same way they fail
on Fargate.

Fargate's task volume is an empty directory owned by root, mode 0755.  The
init step runs its exact command from the task definition, as the task
definition's user, into such a directory; ssogate then runs as the image's
USER (10001:10001, no supplementary groups) with the image's ENTRYPOINT
(tini), the image's ENV overridden by the task's environment and secrets,
and nothing else.  container_sim.py does this in a private mount and network
namespace (root only: skipped otherwise).  The log router and the Datadog
agent are other images and are not run; ssogate's dependency on them is
checked by ecs_rules.py.
"""
import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

import ecs_rules
from deploy_support import ROOT, it, task_definition  # noqa: F401 (fixture)

no_process_outlives_its_test = it.no_process_outlives_its_test

sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import saml_fixtures as fx  # noqa: E402

DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
COMPOSE = os.path.join(ROOT, "docker", "compose.yml")
SIM = os.path.join(ROOT, "tests", "deploy", "container_sim.py")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the engines' default
SANITIZER_ENV = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")


def can_simulate():
    if os.geteuid() != 0:
        return "needs root (mount and network namespaces)"
    for tool in ("unshare", "setpriv", "chroot", "ss", "ip", "tini"):
        if shutil.which(tool) is None and not os.path.exists("/usr/bin/" + tool):
            return "needs %s" % tool
    probe = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "true"], capture_output=True)
    return None if probe.returncode == 0 else "unshare -m -n is not permitted here"


pytestmark = pytest.mark.skipif(can_simulate() is not None, reason=str(can_simulate()))


def runtime_stage(dockerfile=DOCKERFILE):
    text = open(dockerfile).read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    stages, current = [], None
    for l in lines:
        op, _, arg = l.partition(" ")
        if op.upper() == "FROM":
            current = []
            stages.append(current)
        current.append((op.upper(), arg.strip()))
    return stages[-1]


def image_config(dockerfile=DOCKERFILE):
    """USER, ENV, ENTRYPOINT, CMD and the COPY lines of a Dockerfile's runtime stage."""
    cfg = {"user": "0:0", "env": {"PATH": DEFAULT_PATH}, "entrypoint": [], "cmd": [], "copies": {}}
    for op, arg in runtime_stage(dockerfile):
        if op == "USER":
            user = arg.split(":")
            cfg["user"] = "%s:%s" % (user[0], user[1] if len(user) > 1 else user[0])
        elif op == "ENV":
            for k, v in re.findall(r"(\w+)=(\S+)", arg):
                cfg["env"][k] = v
        elif op == "ENTRYPOINT":
            cfg["entrypoint"] = json.loads(arg)
        elif op == "CMD":
            cfg["cmd"] = json.loads(arg)
        elif op == "COPY" and not arg.startswith("--"):
            src, dest = arg.split()
            cfg["copies"][dest] = os.path.join(ROOT, src)
    return cfg


def fargate_volume(path):
    """An empty task volume as Fargate makes it: root:root, 0755."""
    os.makedirs(path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o755)
    return path


def run_sim(tmp, spec):
    spec["workdir"] = tmp
    spec_path, result_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    done = subprocess.run(["unshare", "-m", "-n", "--propagation", "private", it.PY, SIM, spec_path, result_path],
                          capture_output=True, text=True, timeout=180 * it.SLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(result_path) as f:
        return json.load(f)


def log_of(result, name):
    with open(result["containers"][name]["log"], errors="replace") as f:
        return f.read()


def files_in(path):
    out = {}
    for name in os.listdir(path):
        st = os.stat(os.path.join(path, name))
        out[name] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def stub_secrets(task_definition):
    key, cert = fx.make_keypair("contract idp")
    md = fx.idp_metadata_xml(cert)
    values = {"IDP_METADATA": md.decode() if isinstance(md, bytes) else md,
              "SSOGATE_SESSION_SECRET": base64.b64encode(os.urandom(32)).decode(),
              "SSOGATE_STORE_URL": "redis://ssogate-store.internal:6379/1",
              "SSOGATE_REDASH_API_KEY": "test-redash-admin-api-key"}
    init = ecs_rules.container(task_definition, "ssogate-keys")
    for s in init["secrets"]:
        if s["name"].startswith("JWT_KEY_"):
            values[s["name"]] = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                                "rsa_keygen_bits:2048"], capture_output=True, text=True,
                                               check=True).stdout
    return values


def side_services():
    """Redash (the test upstream) and the store, on the task's loopback."""
    return [
        {"name": "redash", "argv": [it.PY, os.path.join(ROOT, "tests/upstream/app.py"), "--listen",
                                    "127.0.0.1:5000"], "ready_url": "http://127.0.0.1:5000/ping"},
        {"name": "redis", "argv": ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                                   "--appendonly", "no"], "ready_tcp": "127.0.0.1:6379"},
    ]


def task_spec(task_definition, volume, secrets, init_user=None, init_command=None):
    """Container specs from the task definition: its users, commands, mounts,
    environment and secrets, with the image's config where the task leaves it."""
    image = image_config()
    init = ecs_rules.container(task_definition, "ssogate-keys")
    gate = ecs_rules.container(task_definition, "ssogate")
    mounts = lambda c: [{"source": volume, "target": m["containerPath"], "readonly": m.get("readOnly", False)}
                        for m in c["mountPoints"]]
    user = init_user or init.get("user", "0")
    init_env = {"PATH": DEFAULT_PATH, **{s["name"]: secrets[s["name"]] for s in init["secrets"]}}
    gate_env = dict(image["env"])
    gate_env.update(ecs_rules.environment(gate))
    gate_env.update({s["name"]: secrets[s["name"]] for s in gate["secrets"]})
    gate_env.update({k: os.environ[k] for k in SANITIZER_ENV if k in os.environ})
    gate_user = gate.get("user", image["user"])
    return [
        {"name": "ssogate-keys", "user": "%s:%s" % (user, user) if ":" not in user else user,
         "argv": init_command or init["command"], "env": init_env, "mounts": mounts(init), "wait": "exit"},
        {"name": "ssogate", "user": gate_user, "argv": image["entrypoint"] + gate.get("command", image["cmd"]),
         "env": gate_env, "mounts": mounts(gate), "files": {"/usr/local/bin/ssogate": it.BIN},
         "wait": "http://127.0.0.1:8080/healthz", "timeout": 30 * it.SLOW, "stop_timeout": gate["stopTimeout"],
         "probes": [{"url": "http://127.0.0.1:8080/readyz", "expect": 200, "timeout": 10 * it.SLOW},
                    {"url": "http://127.0.0.1:8080/ssogate/jwks.json",
                     "headers": {"Host": "ssogate.redash.local:8080"}},
                    {"url": "http://127.0.0.1:9090/metrics"}]},
    ]


HOSTS = {"redash-server.redash.local": "127.0.0.1", "ssogate-store.internal": "127.0.0.1",
         "ssogate.redash.local": "127.0.0.1"}


def test_image_runs_as_10001_with_tini_and_no_arguments():
    image = image_config()
    assert image["user"] == "10001:10001"
    assert image["entrypoint"][0] == "/usr/bin/tini" and image["entrypoint"][-1] == "/usr/local/bin/ssogate"
    assert image["cmd"] == []


def test_task_definition_starts_ssogate_on_a_fargate_volume(task_definition, tmp_path):
    tmp = str(tmp_path)
    volume = fargate_volume(os.path.join(tmp, "volume-keys"))
    secrets = stub_secrets(task_definition)
    result = run_sim(tmp, {"hosts": HOSTS, "services": side_services(),
                           "containers": task_spec(task_definition, volume, secrets)})
    assert all(result["services"].values()), result["services"]
    assert result["containers"]["ssogate-keys"]["exit"] == 0, log_of(result, "ssogate-keys")

    # What the init step left: the volume still root's, every file 0600 and 10001's.
    st = os.stat(volume)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 0, 0)
    files = files_in(volume)
    assert set(files) == {"idp-metadata.xml"} | {"jwt-%d.key" % i for i in range(len(files) - 1)}
    assert all(v == (0o600, 10001, 10001) for v in files.values()), files
    with open(os.path.join(volume, "jwt-0.key")) as f:
        assert f.read().strip() == secrets["JWT_KEY_0"].strip()

    gate = result["containers"]["ssogate"]
    assert gate["ready"], log_of(result, "ssogate")
    # tini runs ssogate as 10001 everywhere (real, effective, saved, fs), no groups.
    (child,) = gate["process"]["children"]
    assert child["cmd"] == "/usr/local/bin/ssogate"
    assert child["uid"] == ["10001"] * 4 and child["groups"] == []
    probes = gate["probes"]
    readyz = probes["http://127.0.0.1:8080/readyz"]
    jwks = probes["http://127.0.0.1:8080/ssogate/jwks.json"]
    metrics = probes["http://127.0.0.1:9090/metrics"]
    assert readyz[0] == 200, readyz  # IdP metadata, keys, Redash by its name, the store
    assert jwks[0] == 200 and json.loads(jwks[1])["keys"][0]["kty"] == "RSA"
    assert metrics[0] == 200 and "ssogate_requests_total" in metrics[1]
    listening = gate["listening"]
    assert re.search(r"127\.0\.0\.1:9090\b", listening) and not re.search(r"(0\.0\.0\.0|\*|\[::\]):9090\b",
                                                                           listening), listening
    assert re.search(r"0\.0\.0\.0:8080\b", listening), listening
    # SIGTERM (after the ALB's deregistration delay): drained, exit 0, within stopTimeout.
    assert gate["stop_exit"] == 0, log_of(result, "ssogate")
    assert gate["stop_seconds"] < ecs_rules.container(task_definition, "ssogate")["stopTimeout"]


def test_the_old_init_step_as_10001_cannot_write_the_volume(task_definition, tmp_path):
    tmp = str(tmp_path)
    volume = fargate_volume(os.path.join(tmp, "volume-keys"))
    spec = task_spec(task_definition, volume, stub_secrets(task_definition), init_user="10001")
    result = run_sim(tmp, {"hosts": HOSTS, "services": [], "containers": spec})
    assert result["containers"]["ssogate-keys"]["exit"] != 0
    assert "Permission denied" in log_of(result, "ssogate-keys")
    assert "ssogate" not in result["containers"], "dependsOn SUCCESS: ssogate never starts"
    assert os.listdir(volume) == []


def test_without_the_chown_ssogate_cannot_read_its_keys(task_definition, tmp_path):
    tmp = str(tmp_path)
    volume = fargate_volume(os.path.join(tmp, "volume-keys"))
    command = ecs_rules.container(task_definition, "ssogate-keys")["command"]
    no_chown = command[:2] + [re.sub(r" && chown [^&]*$", "", command[2])]
    assert no_chown != command
    spec = task_spec(task_definition, volume, stub_secrets(task_definition), init_command=no_chown)
    spec[1]["timeout"] = 10 * it.SLOW
    result = run_sim(tmp, {"hosts": HOSTS, "services": side_services(), "containers": spec})
    assert result["containers"]["ssogate-keys"]["exit"] == 0
    assert all(v == (0o600, 0, 0) for v in files_in(volume).values())
    gate = result["containers"]["ssogate"]
    assert not gate["ready"] and gate["exit"] not in (None, 0)
    assert "Permission denied" in log_of(result, "ssogate"), log_of(result, "ssogate")


def test_compose_keys_reach_10001_whoever_owns_them_on_the_host(tmp_path):
    """docker/compose.yml on a Linux host: docker/dev-keys.sh's files belong
    to the developer (here uid 1000), mode 600; named volumes start empty,
    root's, 0755.  The keys service, then the IdP and ssogate as 10001."""
    tmp = str(tmp_path)
    compose = yaml.safe_load(open(COMPOSE))["services"]
    docker = os.path.join(tmp, "docker")
    os.makedirs(docker)
    shutil.copy(os.path.join(ROOT, "docker", "dev-keys.sh"), docker)
    subprocess.run(["bash", os.path.join(docker, "dev-keys.sh")], check=True, capture_output=True, timeout=120)
    dev_keys = os.path.join(docker, "dev-keys")
    for name in os.listdir(dev_keys):
        path = os.path.join(dev_keys, name)
        assert name.endswith(".crt") or stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, name
        os.chown(path, 1000, 1000)
    os.chown(dev_keys, 1000, 1000)
    volumes = {"ssogate-keys": fargate_volume(os.path.join(tmp, "vol-ssogate-keys")),
               "idp-keys": fargate_volume(os.path.join(tmp, "vol-idp-keys"))}

    def mounts(service):
        out = []
        for v in compose[service]["volumes"]:
            src, target, *mode = v.split(":")
            src = volumes[src] if src in volumes else os.path.join(docker, os.path.normpath(src))
            out.append({"source": src, "target": target, "readonly": mode == ["ro"]})
        return out

    ssogate_image, idp_image = image_config(), image_config(os.path.join(ROOT, "docker", "Dockerfile.idp"))
    keys = compose["keys"]
    gate_env = dict(ssogate_image["env"], **{k: str(v) for k, v in compose["ssogate"]["environment"].items()})
    gate_env.update({k: os.environ[k] for k in SANITIZER_ENV if k in os.environ})
    containers = [
        {"name": "keys", "user": keys["user"] + ":" + keys["user"], "argv": keys["entrypoint"],
         "env": {"PATH": DEFAULT_PATH}, "mounts": mounts("keys"), "wait": "exit"},
        {"name": "idp", "user": idp_image["user"], "argv": idp_image["entrypoint"] + compose["idp"]["command"],
         "env": dict(idp_image["env"]), "mounts": mounts("idp"), "files": idp_image["copies"],
         "wait": "http://127.0.0.1:8082/metadata", "timeout": 30},
        {"name": "ssogate", "user": ssogate_image["user"], "argv": ssogate_image["entrypoint"] + ssogate_image["cmd"],
         "env": gate_env, "mounts": mounts("ssogate"), "files": {"/usr/local/bin/ssogate": it.BIN},
         "wait": "http://127.0.0.1:8080/healthz", "timeout": 30 * it.SLOW,
         "probes": [{"url": "http://127.0.0.1:8080/readyz", "expect": 200, "timeout": 10 * it.SLOW}]},
    ]
    services = side_services()
    services[1]["argv"][2] = "127.0.0.1"
    result = run_sim(tmp, {"hosts": {"redash-server": "127.0.0.1", "redis": "127.0.0.1"},
                           "services": services, "containers": containers})
    assert result["containers"]["keys"]["exit"] == 0, log_of(result, "keys")
    assert all(v == (0o600, 10001, 10001) for v in files_in(volumes["ssogate-keys"]).values())
    assert result["containers"]["idp"]["ready"], log_of(result, "idp")
    gate = result["containers"]["ssogate"]
    assert gate["ready"], log_of(result, "ssogate")
    assert gate["probes"]["http://127.0.0.1:8080/readyz"][0] == 200, gate["probes"]
    assert gate["process"]["children"][0]["uid"] == ["10001"] * 4
