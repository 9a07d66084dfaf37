"""Identity the app can trust (issue 4): the JWT verified exactly the way
Redash verifies it (PyJWT from Debian), the plain identity headers, and header
hygiene on authenticated requests."""
import json

import jwt
import pytest
import requests

from conftest import Idp, free_port, login, rsa_key, wait_until



def redash_verify(jwks, token, issuer, audience, leeway=0):
    """What Redash's jwt_auth.verify_jwt_token does, with PyJWT."""
    for k in jwks["keys"]:
        key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(k))
        try:
            payload = jwt.decode(token, key=key, audience=audience, algorithms=["RS256"], leeway=leeway)
        except jwt.PyJWTError:
            continue
        if payload["iss"] != issuer:
            return None
        return payload
    return None


@pytest.fixture
def jwt_gate(tmp_path, gate_factory, upstream):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    key = rsa_key(str(tmp_path), "jwt-a.key")
    gate = gate_factory([upstream.url], idp=idp, port=port,
                        extra={"headers": {"jwt": "X-Ssogate-Assertion", "jwt_key": key},
                               "session": {"logout_paths": "/logout", "app_cookies": "session remember_token"}})
    yield gate, idp, upstream, key
    idp.stop()


def upstream_headers(client, gate, path="/private/echo"):
    r = client.get(gate.url + path, headers={"Accept": "text/html"})
    assert r.status_code == 200, r.text
    return r.json()["headers"]


def test_redash_accepts_the_token(jwt_gate):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c, "Carol@Example.com", groups="eng")
        headers = upstream_headers(c, gate)
    token = [v for k, v in headers if k == "X-Ssogate-Assertion"]
    assert len(token) == 1
    jwks = requests.get(gate.url + "/ssogate/jwks.json", timeout=5)
    assert "max-age" in jwks.headers["Cache-Control"]
    payload = redash_verify(jwks.json(), token[0], gate.url, "redash")
    assert payload is not None
    assert payload["email"] == "carol@example.com"
    assert payload["groups"] == ["eng"] and payload["name"] == "Carol"
    assert payload["iat"] == payload["nbf"] and payload["exp"] - payload["iat"] <= 310
    header = jwt.get_unverified_header(token[0])
    assert header["alg"] == "RS256" and header["kid"] == jwks.json()["keys"][0]["kid"]
    assert dict(headers)["X-Forwarded-Email"] == "carol@example.com"
    assert dict(headers)["X-Forwarded-Remote-User"] == "carol@example.com"
    assert dict(headers)["X-Forwarded-Groups"] == "eng"


def test_verifier_refuses_expired_and_foreign_audience(jwt_gate):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c)
        token = dict(upstream_headers(c, gate))["X-Ssogate-Assertion"]
    jwks = requests.get(gate.url + "/ssogate/jwks.json", timeout=5).json()
    assert redash_verify(jwks, token, gate.url, "redash") is not None
    assert redash_verify(jwks, token, gate.url, "redash", leeway=-400) is None  # 400 s later
    assert redash_verify(jwks, token, gate.url, "another-app") is None
    assert redash_verify(jwks, token, "https://other-issuer", "redash") is None


@pytest.mark.concurrency
def test_token_is_signed_once_per_session_not_per_request(jwt_gate):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c)
        before = gate.metrics()["ssogate_jwt_signatures_total"]
        tokens = {dict(upstream_headers(c, gate))["X-Ssogate-Assertion"] for _ in range(30)}
    assert len(tokens) <= 2  # one per worker at most
    assert gate.metrics()["ssogate_jwt_signatures_total"] - before <= 2


def test_rotated_out_key_is_refused_after_reload(jwt_gate, tmp_path):
    gate, idp, upstream, key_a = jwt_gate
    with requests.Session() as c:
        login(gate, c)
        old_token = dict(upstream_headers(c, gate))["X-Ssogate-Assertion"]
        key_b = rsa_key(str(tmp_path), "jwt-b.key")
        gate.settings["headers"]["jwt_key"] = "%s %s" % (key_a, key_b)  # publish B second
        gate.reload()
        wait_until(lambda: gate.metrics()["ssogate_config_generation"] == 2, what="reload")
        assert len(requests.get(gate.url + "/ssogate/jwks.json", timeout=5).json()["keys"]) == 2
        gate.settings["headers"]["jwt_key"] = key_b  # A retired
        gate.reload()
        wait_until(lambda: gate.metrics()["ssogate_config_generation"] == 3, what="reload")
        jwks = requests.get(gate.url + "/ssogate/jwks.json", timeout=5).json()
        assert len(jwks["keys"]) == 1
        assert redash_verify(jwks, old_token, gate.url, "redash") is None
        new_token = dict(upstream_headers(c, gate))["X-Ssogate-Assertion"]
        assert redash_verify(jwks, new_token, gate.url, "redash") is not None


@pytest.mark.parametrize("name", ["X-Ssogate-Assertion", "x-ssogate-assertion", "X_Ssogate_Assertion",
                                  "X-Forwarded-Email", "X_Forwarded_Email", "X-FORWARDED-REMOTE-USER"])
def test_client_identity_headers_are_replaced_on_authenticated_requests(jwt_gate, name):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c, "dave@example.com")
        r = c.get(gate.url + "/private/echo", headers={name: "admin@example.com"})
        headers = r.json()["headers"]
    assert "admin@example.com" not in json.dumps(headers)
    assert dict(headers)["X-Forwarded-Email"] == "dave@example.com"


def test_app_logout_path_ends_both_sessions(jwt_gate):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c)
        r = c.get(gate.url + "/logout", allow_redirects=False)
        assert r.status_code == 302
        cookies = r.raw.headers.getlist("Set-Cookie")
        for name in ("ssogate", "session", "remember_token"):
            assert any(v.startswith(name + "=;") and "Max-Age=0" in v for v in cookies), cookies
        assert not any("/logout" == rec["target"] for rec in upstream.requests_seen())


def test_session_and_state_cookies_never_reach_the_app(jwt_gate):
    gate, idp, upstream, _ = jwt_gate
    with requests.Session() as c:
        login(gate, c)
        c.cookies.set("other", "1")
        headers = upstream_headers(c, gate)
    cookie = [v for k, v in headers if k == "Cookie"]
    assert cookie == ["other=1"]
