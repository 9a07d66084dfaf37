"""The commands the docs tell an operator to type, taken out of the docs and
checked offline:

- docs/staging.md's one-off `--check` task: the `aws ecs run-task` command is
  parsed and its request validated by botocore's ParamValidator against the
  ECS service model's RunTask input shape (the same check test_task_definition
  applies to RegisterTaskDefinition), and it must name a container of
  docs/deploy/task-definition.json and run it with `--check` in private
  subnets; the laptop variant's JMESPath query must yield exactly the ssogate
  container's environment;
- docs/idp/google-workspace.md's recipe for a metadata file with both of
  Google's certificates: the script is run on two files shaped like
  GoogleIDPMetadata.xml and `ssogate --check` must list both certificates.
"""
import base64
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap

import botocore.session
import jmespath
import pytest
from botocore.validate import ParamValidator

from deploy_support import ROOT, it, task_definition  # noqa: F401 (fixture)

no_process_outlives_its_test = it.no_process_outlives_its_test

sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import saml_fixtures as fx  # noqa: E402

STAGING = os.path.join(ROOT, "docs", "staging.md")
GOOGLE = os.path.join(ROOT, "docs", "idp", "google-workspace.md")
MD = "urn:oasis:names:tc:SAML:2.0:metadata"

# Options of the aws CLI itself, not members of the request.
CLI_ONLY = {"query", "output", "region", "profile", "no-cli-pager"}


def code_blocks(path, language):
    """The fenced blocks of one language, dedented (blocks inside list items
    are indented in the markdown)."""
    with open(path) as f:
        text = f.read()
    fence = re.compile(r"^( *)```%s\n(.*?)^\1```" % language, re.S | re.M)
    return [textwrap.dedent(m.group(2)) for m in fence.finditer(text)]


def shell_command(path, starts_with):
    """The one command of the doc's sh blocks that starts with these words,
    its continuation lines joined."""
    found = []
    for block in code_blocks(path, "sh"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith(starts_with):
                found.append(command.strip())
    assert len(found) == 1, "%s: expected one '%s' command, found %d" % (path, starts_with, len(found))
    return found[0]


def camel(option):
    head, *rest = option.split("-")
    return head + "".join(word.capitalize() for word in rest)


def request_of(command, words):
    """The API request an `aws SERVICE OPERATION --a-b value ...` command
    sends: option names in camelCase, JSON values decoded (what the CLI does
    for structure and list parameters given as JSON)."""
    argv = shlex.split(command)
    assert argv[:len(words)] == words, argv
    args, params = argv[len(words):], {}
    while args:
        option = args.pop(0)
        assert option.startswith("--") and args, "not an --option value pair at %r" % option
        value = args.pop(0)
        if option[2:] in CLI_ONLY:
            continue
        params[camel(option[2:])] = json.loads(value) if value[:1] in "{[" else value
    return params


def run_task_problems(request):
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RunTask").input_shape
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


def check_task_request():
    return request_of(shell_command(STAGING, "aws ecs run-task"), ["aws", "ecs", "run-task"])


def test_the_check_task_is_a_valid_run_task_request(task_definition):
    request = check_task_request()
    assert run_task_problems(request) == ""
    assert request["launchType"] == "FARGATE"
    vpc = request["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["subnets"] and vpc["securityGroups"]
    assert vpc["assignPublicIp"] == "DISABLED"  # the service's private subnets
    overrides = request["overrides"]["containerOverrides"]
    assert [o["name"] for o in overrides] == ["ssogate"]
    assert overrides[0]["command"] == ["--check"]  # arguments: the entrypoint is tini -- ssogate
    names = [c["name"] for c in task_definition["containerDefinitions"]]
    assert overrides[0]["name"] in names
    assert request["taskDefinition"].split("/")[-1].split(":")[0] == task_definition["family"]


@pytest.mark.parametrize("change,expected", [
    (lambda r: r["networkConfiguration"]["awsvpcConfiguration"].pop("subnets"),
     "Missing required parameter"),
    (lambda r: r["overrides"]["containerOverrides"][0].update(command="--check"),
     "Invalid type for parameter overrides.containerOverrides[0].command"),
    (lambda r: r.update(networkConfig=r.pop("networkConfiguration")), "Unknown parameter"),
])
def test_the_run_task_check_bites(change, expected):
    request = check_task_request()
    change(request)
    assert expected in run_task_problems(request)


def test_the_laptop_query_yields_the_containers_environment(task_definition):
    command = shell_command(STAGING, "aws ecs describe-task-definition")
    query = shlex.split(command)[shlex.split(command).index("--query") + 1]
    pairs = jmespath.search(query, {"taskDefinition": task_definition})
    gate = next(c for c in task_definition["containerDefinitions"] if c["name"] == "ssogate")
    assert ["%s=%s" % tuple(p) for p in pairs] == \
        ["%s=%s" % (e["name"], e["value"]) for e in gate["environment"]]


def google_metadata(cert_pem, valid_until):
    """GoogleIDPMetadata.xml's shape: md: prefix on the root, ds: declared on
    KeyInfo, validUntil on the entity."""
    xml = fx.idp_metadata_xml(cert_pem)
    return xml.replace(b" entityID=", b' validUntil="%s" entityID=' % valid_until.encode(), 1)


def merge_script():
    blocks = [b for b in code_blocks(GOOGLE, "sh") if "GoogleIDPMetadata-both.xml" in b]
    assert len(blocks) == 1
    body = blocks[0].split("<<'EOF'\n", 1)[1]
    return body[:body.rindex("EOF")]


def test_the_metadata_with_both_certificates_lists_both(tmp_path):
    _, current = fx.make_keypair("Google, current")
    _, new = fx.make_keypair("Google, new")
    (tmp_path / "GoogleIDPMetadata.xml").write_bytes(google_metadata(current, "2027-01-01T00:00:00.000Z"))
    (tmp_path / "GoogleIDPMetadata-new.xml").write_bytes(google_metadata(new, "2031-01-01T00:00:00.000Z"))
    done = subprocess.run(["/usr/bin/python3", "-", "GoogleIDPMetadata.xml", "GoogleIDPMetadata-new.xml"],
                          input=merge_script(), cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    both = tmp_path / "GoogleIDPMetadata-both.xml"
    both.write_text(done.stdout)
    both.chmod(0o600)
    # The current certificate first, then the new one; the rest is the current file's.
    certs = re.findall(r"<ds:X509Certificate>([^<]+)</ds:X509Certificate>", done.stdout)
    assert certs == [fx.cert_b64(current), fx.cert_b64(new)]
    assert done.stdout.count('validUntil="2027-01-01T00:00:00.000Z"') == 1

    jwt_key = tmp_path / "jwt.key"
    jwt_key.write_text(subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        capture_output=True, text=True, check=True).stdout)
    jwt_key.chmod(0o600)
    env = {"PATH": "/usr/bin:/bin",
           "SSOGATE_HEADERS_JWT_KEY": str(jwt_key),
           "SSOGATE_SERVER_PUBLIC_URL": "https://redash.example.com",
           "SSOGATE_UPSTREAM_URL": "http://127.0.0.1:9",
           "SSOGATE_SESSION_SECRET": base64.b64encode(os.urandom(32)).decode(),
           "SSOGATE_SAML_IDP_METADATA": str(both),
           "SSOGATE_ACCESS_ALLOWED_DOMAINS": "example.com"}
    done = subprocess.run([it.BIN, "--check"], env=env, capture_output=True, text=True,
                          timeout=60 * it.SLOW)
    out = done.stdout + done.stderr
    assert "IdP entity id" in out and fx.IDP_ENTITY_ID in out, out
    assert re.search(r"IdP signing certificate 1: expires in 36[45] days", out), out
    assert re.search(r"IdP signing certificate 2: expires in 36[45] days", out), out
    assert "IdP signing certificate 3" not in out


def test_the_version_is_one_number_everywhere():
    """meson.build's version is what --version prints, CHANGELOG.md's current
    section, and what docs/versions.md's tag command reads."""
    with open(os.path.join(ROOT, "meson.build")) as f:
        meson = re.search(r"^  version : '([^']+)',$", f.read(), re.M).group(1)
    printed = subprocess.run([it.BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert printed.stdout.strip() == "ssogate " + meson
    with open(os.path.join(ROOT, "CHANGELOG.md")) as f:
        versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", f.read(), re.M)
    assert versions and versions[0] == meson, "CHANGELOG.md's newest version is not " + meson
    command = shell_command(os.path.join(ROOT, "docs", "versions.md"), "VERSION=")
    done = subprocess.run(["sh", "-c", command + ' && printf %s "$VERSION"'], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.stdout == meson, done.stderr
