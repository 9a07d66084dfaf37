"""ssogate's environment exactly as a task definition gives it, rendered for a
run of the real binary here: the container's `environment` list as is, its
`secrets` replaced by test values, and the files the init step would write
(IdP metadata, JWT keys) generated into a temp dir that stands in for the
task volume (its mount path in every value is rewritten to the temp dir).

check(env) runs `ssogate --check` on it; summary() reads the configuration
--check printed into {section: {key: value}}.
"""
import base64
import os
import re
import subprocess
import sys

import ecs_rules
from deploy_support import ROOT, it

sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import saml_fixtures as fx  # noqa: E402

# A test value for each secret a task may give ssogate.  A secret not listed
# here fails the render: a new one must get a value (and so a --check run).
SECRET_VALUES = {
    "SSOGATE_SESSION_SECRET": lambda: base64.b64encode(os.urandom(32)).decode(),
    "SSOGATE_STORE_URL": lambda: "redis://127.0.0.1:1/1",
    "SSOGATE_REDASH_API_KEY": lambda: "test-redash-admin-api-key-" + os.urandom(8).hex(),
}

# The init step's script writes each secret into a file:  "${NAME}" > /keys/file
INIT_WRITE = re.compile(r'"\$\{(\w+)\}" > (\S+)')


def init_file_values(td):
    """{env name: content} of what the init step writes: the IdP metadata of
    a test IdP, a fresh RSA key for each JWT_KEY_*."""
    values = {}
    for s in ecs_rules.container(td, "ssogate-keys")["secrets"]:
        if s["name"] == "IDP_METADATA":
            _, cert = fx.make_keypair("task idp")
            md = fx.idp_metadata_xml(cert)
            values[s["name"]] = md.decode() if isinstance(md, bytes) else md
        elif s["name"].startswith("JWT_KEY_"):
            values[s["name"]] = subprocess.run(
                ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                capture_output=True, text=True, check=True).stdout
        else:
            raise KeyError("the init step reads %s: give it a test value here" % s["name"])
    return values


def render(td, tmp):
    """ssogate's environment from task definition td, files under tmp."""
    init = ecs_rules.container(td, "ssogate-keys")
    gate = ecs_rules.container(td, "ssogate")
    (mount,) = [m["containerPath"] for m in gate["mountPoints"]]
    values = init_file_values(td)
    writes = INIT_WRITE.findall(init["command"][2])
    assert {name for name, _ in writes} == set(values), (writes, sorted(values))
    for name, path in writes:
        assert path.startswith(mount + "/"), path
        local = os.path.join(str(tmp), os.path.relpath(path, mount))
        with open(local, "w") as f:
            f.write(values[name] + "\n")
        os.chmod(local, 0o600)
    env = {k: v.replace(mount + "/", str(tmp) + "/") for k, v in ecs_rules.environment(gate).items()}
    for s in gate.get("secrets", []):
        if s["name"] not in SECRET_VALUES:
            raise KeyError("the task gives ssogate the secret %s: add a test value to SECRET_VALUES"
                           % s["name"])
        assert s["name"] not in env, "%s is both in environment and secrets" % s["name"]
        env[s["name"]] = SECRET_VALUES[s["name"]]()
    return env


def check(env):
    """ssogate --check with exactly env (and PATH): (exit code, stdout, stderr)."""
    done = subprocess.run([it.BIN, "--check"], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=60 * it.SLOW)
    return done.returncode, done.stdout, done.stderr


def summary(out):
    """The configuration part of --check's output: {section: {key: value}}."""
    sections, current = {}, None
    for line in out.splitlines():
        if re.match(r"^[a-z]+$", line):
            current = sections.setdefault(line, {})
        elif current is not None and line.startswith("  "):
            key, _, value = line.strip().partition(" ")
            current[key] = value.strip()
        elif line.endswith(":"):
            current = None  # the checks after the summary ("saml:", "upstream targets:")
    return sections
