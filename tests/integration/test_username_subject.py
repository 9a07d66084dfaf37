"""IdPs whose subject is a username (issue 18, point 4): an Okta org whose
NameID is the Okta username, Oracle Access Manager's persistent username
NameID, Shibboleth's uid.  Such a subject is an identity wherever nothing
needs an email (allowed_groups, "*", the user header, the JWT's sub); where
something does (a domain or email rule, Redash), the refusal names it.  Also
issue 24 blocker 4: allowed_groups without groups_attribute is refused at
start and by --check.

The test IdP (tests/idp/server.py) puts whatever is typed as "email" into
the NameID, so login(gate, c, "jdoe") is a username NameID with no email."""
import json
import os
import subprocess

import jwt
import pytest
import requests

import saml_fixtures as fx
from conftest import BIN, Idp, free_port, login, rsa_key, secret, wait_until



@pytest.fixture
def make_gate(tmp_path, gate_factory, upstream):
    """make_gate(access={...}, upstream={...}) -> (gate, idp): JWT on, groups from 'groups'."""
    idps = []

    def make(access, upstream_extra=None):
        port = free_port()
        idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
        idps.append(idp)
        key = rsa_key(str(tmp_path), "jwt.key")
        extra = {"access": access, "headers": {"jwt": "X-Ssogate-Assertion", "jwt_key": key,
                                                "jwt_audience": "app"}}
        if upstream_extra:
            extra["upstream"] = upstream_extra
        return gate_factory([upstream.url], idp=idp, port=port, extra=extra), idp

    yield make
    for idp in idps:
        idp.stop()


def echo_headers(client, gate):
    r = client.get(gate.url + "/private/echo", headers={
        "Accept": "text/html", "X-Forwarded-Email": "admin@example.com",
        "X-Forwarded-Remote-User": "admin@example.com"})
    assert r.status_code == 200, r.text
    return r.json()["headers"]


def log_text(gate):
    return gate.errors() + open(gate.proc.out_path).read()


def test_username_passes_by_group_with_subject_headers_and_no_email(make_gate):
    gate, _ = make_gate({"allowed_domains": "example.com", "allowed_groups": "eng",
                         "public_paths": "/public"})
    with requests.Session() as c:
        r = login(gate, c, "jdoe", groups="eng")
        assert r.status_code == 303, r.text
        session = c.get(gate.url + "/ssogate/session").json()
        assert session["subject"] == "jdoe" and session["email"] == ""
        headers = echo_headers(c, gate)
    names = [k.lower() for k, _ in headers]
    # The email header is absent (the client's forged one dropped); the user is the subject.
    assert "x-forwarded-email" not in names
    assert dict(headers)["X-Forwarded-Remote-User"] == "jdoe"
    assert "admin@example.com" not in json.dumps(headers)
    token = dict(headers)["X-Ssogate-Assertion"]
    jwks = requests.get(gate.url + "/ssogate/jwks.json", timeout=5).json()
    key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))
    payload = jwt.decode(token, key=key, audience="app", algorithms=["RS256"])
    assert payload["sub"] == "jdoe" and "email" not in payload
    assert payload["groups"] == ["eng"]
    assert any(rec.get("user") == "jdoe" for rec in gate.access_log())


def test_username_refused_naming_what_needed_an_email(make_gate):
    gate, _ = make_gate({"allowed_domains": "example.com", "allowed_groups": "eng"})
    with requests.Session() as c:
        r = login(gate, c, "jdoe", groups="sales")
        assert r.status_code == 403
        assert "jdoe is not allowed" in r.text
        assert c.get(gate.url + "/ssogate/session").status_code == 401
    text = log_text(gate)
    assert ("[access] allowed_domains needs an email address, and the IdP sent subject 'jdoe' "
            "with no email attribute") in text
    assert "no allowed_groups entry matches" in text
    # Someone with an email still gets in by the domain, as before.
    with requests.Session() as c:
        assert login(gate, c, "alice@example.com").status_code == 303


def test_username_passes_star_but_not_an_email_rule(make_gate):
    gate, _ = make_gate({"allowed_domains": "*"})
    with requests.Session() as c:
        assert login(gate, c, "jdoe").status_code == 303
        assert dict(echo_headers(c, gate))["X-Forwarded-Remote-User"] == "jdoe"
    gate.settings["access"] = {"allowed_emails": "jdoe@example.com"}
    gate.reload()
    wait_until(lambda: gate.metrics()["ssogate_config_generation"] == 2, what="reload")
    with requests.Session() as c:
        assert login(gate, c, "jdoe@example.com").status_code == 303
    # A bare username is refused, naming the rule that needed an email.
    with requests.Session() as c:
        assert login(gate, c, "jdoe").status_code == 403
    assert "[access] allowed_emails needs an email address" in log_text(gate)


def test_redash_needs_an_email_whatever_the_rules(make_gate):
    gate, _ = make_gate({"allowed_domains": "*", "allowed_groups": "eng"}, {"app": "redash"})
    with requests.Session() as c:
        r = login(gate, c, "jdoe", groups="eng")
        assert r.status_code == 403
    assert ("[upstream] app = redash (Redash knows users by their email) needs an email address, "
            "and the IdP sent subject 'jdoe'") in log_text(gate)
    with requests.Session() as c:
        assert login(gate, c, "bob@example.com", groups="eng").status_code == 303


def test_session_without_email_refused_after_a_reload_that_needs_one(make_gate):
    """A session made under allowed_groups meets a reload to allowed_domains."""
    gate, _ = make_gate({"allowed_groups": "eng"})
    with requests.Session() as c:
        assert login(gate, c, "jdoe", groups="eng").status_code == 303
        assert c.get(gate.url + "/private/echo").status_code == 200
        gate.settings["access"] = {"allowed_domains": "example.com"}
        gate.reload()
        wait_until(lambda: gate.metrics()["ssogate_config_generation"] == 2, what="reload")
        assert c.get(gate.url + "/private/echo").status_code == 403
    assert "by the current [access] rules: [access] allowed_domains needs an email" in log_text(gate)


def test_check_response_shows_no_email_and_the_reason(make_gate, tmp_path):
    gate, idp = make_gate({"allowed_domains": "example.com", "allowed_groups": "eng"})
    capture = tmp_path / "capture.b64"
    capture.write_text(idp.response(name_id="jdoe", name_id_format=fx.PERSISTENT, in_response_to="_r1",
                                    attributes={"groups": ["sales"]}))
    r = subprocess.run([BIN, "--check-response", str(capture), "-c", gate.ini],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert "email    - (none: the subject is not an email address)" in r.stdout
    assert "[access] allowed_domains needs an email address, and the IdP sent subject 'jdoe'" in r.stdout
    capture.write_text(idp.response(name_id="jdoe", name_id_format=fx.PERSISTENT, in_response_to="_r1",
                                    attributes={"groups": ["eng"]}))
    r = subprocess.run([BIN, "--check-response", str(capture), "-c", gate.ini],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "VERDICT: accepted" in r.stdout
    assert "WARNING: this response has no email, which [access] allowed_domains needs" in r.stdout


def test_check_warns_when_metadata_promises_no_email(make_gate):
    gate, idp = make_gate({"allowed_domains": "example.com"})

    def check():
        r = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
        return r.stdout + r.stderr

    out = check()
    assert "email needed by      [access] allowed_domains" in out
    assert "lists no emailAddress NameIDFormat" not in out  # the test IdP lists emailAddress
    # What Oracle Access Manager or Shibboleth publish: persistent only.
    with open(idp.metadata_path, "rb") as f:
        xml = f.read()
    with open(idp.metadata_path, "wb") as f:
        f.write(xml.replace(b"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                            fx.PERSISTENT.encode()))
    out = check()
    assert ("WARNING: [access] allowed_domains needs an email address, but the IdP metadata lists "
            "no emailAddress NameIDFormat") in out
    # Nothing that needs an email, no warning.
    gate.settings["access"] = {"allowed_domains": "*"}
    gate.write()
    out = check()
    assert "lists no emailAddress NameIDFormat" not in out
    assert "email needed by      - (a subject that is not an email, a username, can pass)" in out
    # An email attribute configured: the NameID need not be the email.
    gate.settings["access"] = {"allowed_domains": "example.com"}
    gate.settings["saml"]["email_attribute"] = "mail"
    gate.write()
    assert "lists no emailAddress NameIDFormat" not in check()


def test_allowed_groups_without_groups_attribute_is_a_configuration_error(tmp_path, upstream):
    """Issue 24: it used to load, pass --check and then deny everyone."""
    ini = tmp_path / "groups.ini"
    ini.write_text("[server]\npublic_url = https://app.example.com\nlisten = 127.0.0.1:%d\n"
                   "[upstream]\nurl = %s\n[headers]\njwt =\n[session]\nsecret = %s\n"
                   "[access]\nallowed_groups = eng\n" % (free_port(), upstream.url, secret()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGATE_")}
    expected = "[access] allowed_groups (%s:11): needs [saml] groups_attribute" % ini
    r = subprocess.run([BIN, "--check", "-c", str(ini)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 1 and expected in r.stderr, (r.stdout, r.stderr)
    r = subprocess.run([BIN, "-c", str(ini)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0 and expected in r.stderr, (r.stdout, r.stderr)
    # The same from the environment, as the ECS module sets it.
    env["SSOGATE_SAML_GROUPS_ATTRIBUTE"] = "groups"
    r = subprocess.run([BIN, "--check", "-c", str(ini)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert "needs [saml] groups_attribute" not in r.stdout + r.stderr
