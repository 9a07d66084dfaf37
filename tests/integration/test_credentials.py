"""Redash as teams use it besides a person in a browser tab (issue 11): API keys,
shared dashboards and embeds pass without a session and get no identity; wrong
keys are limited per client; the Redash preset; the answer for each kind of
client without a session.

The upstream is tests/upstream/app.py's redash_like: it reads a key the way
redash/authentication/__init__.py does (api_key parameter, else Authorization
with "Key " cut, else the route's token), falls back to Flask's "session"
cookie and to the remote-user header like Redash's loaders, and answers 404
"Please login" to anyone else, as Redash's API does for a wrong key."""
import os
import subprocess
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))
from conftest import BIN, Idp, free_port, login, wait_until  # noqa: E402
from test_identity import rsa_key  # noqa: E402

KEY = "TestKey0123456789abcdefghijklmnopqrstuvw"  # the key tests/upstream/app.py knows
WRONG = "WrongKey23456789abcdefghijklmnopqrstuvw"
IDENTITY = ("X-Forwarded-Remote-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Ssogate-Assertion")

SHAPES = {
    "api_key": ("/api/queries/1/results.csv?api_key=%s", {}),
    "embed": ("/embed/query/1/visualization/2?api_key=%s", {}),
    "authorization_key": ("/api/queries/1/results.json", {"Authorization": "Key %s"}),
    "public_dashboard": ("/public/dashboards/%s", {}),
    "api_public_dashboard": ("/api/dashboards/public/%s", {}),
}
KIND = {"api_key": "api_key", "embed": "api_key", "authorization_key": "authorization_key",
        "public_dashboard": "public_dashboard", "api_public_dashboard": "public_dashboard"}


def shape(name, key):
    path, headers = SHAPES[name]
    return path.replace("%s", key), {k: v % key for k, v in headers.items()}


def cred_gate(gate_factory, upstream, **extra):
    settings = {"access": {"app_credentials": "redash", "public_paths": "/ping"}}
    for section, values in extra.items():
        settings.setdefault(section, {}).update(values)
    return gate_factory([upstream.url], extra=settings)


def make_jwt_cred_gate(tmp_path, gate_factory, upstream, **extra):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    key = rsa_key(str(tmp_path), "jwt.key")
    settings = {"headers": {"jwt": "X-Ssogate-Assertion", "jwt_key": key},
                "access": {"app_credentials": "redash", "public_paths": "/ping"}}
    settings.update(extra)
    return gate_factory([upstream.url], idp=idp, port=port, extra=settings), idp


@pytest.fixture
def jwt_cred_gate(tmp_path, gate_factory, upstream):
    """Sign-in, the JWT on, and app credentials on: (gate, idp)."""
    gate, idp = make_jwt_cred_gate(tmp_path, gate_factory, upstream)
    yield gate, idp
    idp.stop()


def seen(upstream, marker):
    return [r for r in upstream.requests_seen() if marker in r["target"]]


def forwarded(upstream):
    """What reached the upstream, without the readiness prober's /ping."""
    return [r for r in upstream.requests_seen() if r["target"] != "/ping"]


def header_names(record):
    return {k.lower() for k, _ in record["headers"]}


# ---- point 1: the app's own credentials pass, and nothing else does -----------------------------

@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_credential_passes_without_a_session_and_without_identity(jwt_cred_gate, upstream, name):
    gate, _ = jwt_cred_gate
    path, headers = shape(name, KEY)
    r = requests.get(gate.url + path, headers=dict(headers, Cookie="session=alice; remember_token=x"),
                     allow_redirects=False, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "api-key"  # Redash served the key, not the cookie's user
    sent = {k.lower() for k, _ in r.json()["headers"]}
    assert not sent & {h.lower() for h in IDENTITY}
    assert "cookie" not in sent  # Redash's own session cookie never rides along
    wait_until(lambda: any(l.get("route") == "credential" for l in gate.access_log()), what="log")
    line = [l for l in gate.access_log() if l.get("route") == "credential"][-1]
    assert line["credential"] == KIND[name] and line["user"] is None and line["status"] == 200
    with open(gate.proc.out_path) as out, open(gate.proc.err_path) as err:
        assert KEY not in out.read() + err.read()  # neither the key nor the share token
    metrics = gate.metrics()
    assert metrics['ssogate_credential_requests_total{kind="%s",outcome="passed"}' % KIND[name]] == 1
    assert metrics['ssogate_requests_total{route="credential",class="2xx"}'] == 1


def test_shared_dashboard_token_is_redacted_from_the_log(gate_factory, upstream):
    gate = cred_gate(gate_factory, upstream)
    requests.get(gate.url + "/public/dashboards/" + WRONG, timeout=5)
    wait_until(lambda: any(l.get("route") == "credential" for l in gate.access_log()), what="log")
    line = [l for l in gate.access_log() if l.get("route") == "credential"][-1]
    assert line["path"] == "/public/dashboards/REDACTED" and line["status"] == 404


def test_a_wrong_key_is_answered_by_redash_itself(gate_factory, upstream):
    gate = cred_gate(gate_factory, upstream)
    path, headers = shape("authorization_key", WRONG)
    r = requests.get(gate.url + path, headers=headers, timeout=5)
    assert r.status_code == 404 and "Please login" in r.json()["message"]
    assert len(seen(upstream, "/api/queries/1/results.json")) == 1


def test_credentials_are_off_by_default(gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"access": {"public_paths": "/ping"}})
    for name in SHAPES:
        path, headers = shape(name, KEY)
        r = requests.get(gate.url + path, headers=headers, allow_redirects=False, timeout=5)
        assert r.status_code == 401, (name, r.status_code)
    assert not seen(upstream, "/api/") and not seen(upstream, "/public/") and not seen(upstream, "/embed/")


def test_a_key_does_not_open_redash_pages_that_are_not_api_or_embed(gate_factory, upstream):
    gate = cred_gate(gate_factory, upstream)
    for path in ("/login?api_key=" + KEY, "/reset/abc?api_key=" + KEY, "/queries/1"):
        r = requests.post(gate.url + path, headers={"Authorization": "Key " + KEY},
                          data={"email": "a@b", "password": "x"}, allow_redirects=False, timeout=5)
        assert r.status_code == 401, path
    assert not seen(upstream, "/login") and not seen(upstream, "/reset") and not seen(upstream, "/queries")


def test_a_session_and_a_credential_go_as_the_session(jwt_cred_gate, upstream):
    gate, _ = jwt_cred_gate
    with requests.Session() as c:
        login(gate, c)
        r = c.get(gate.url + "/api/queries/1?api_key=" + WRONG, timeout=5)
    assert r.status_code == 200 and r.json()["user"] == "alice@example.com"
    sent = header_names(r.json())
    assert {"x-forwarded-remote-user", "x-ssogate-assertion"} <= sent
    wait_until(lambda: any(l["path"] == "/api/queries/1" for l in gate.access_log()), what="log")
    line = [l for l in gate.access_log() if l["path"] == "/api/queries/1"][-1]
    assert line["route"] == "app" and line["user"] == "alice@example.com" and "credential" not in line


def test_spoofed_identity_on_a_credential_request_never_reaches_redash(jwt_cred_gate, upstream):
    gate, _ = jwt_cred_gate
    spoof = [("X-Forwarded-Email", "boss@example.com"), ("X-Forwarded-Remote-User", "boss@example.com"),
             ("X-Forwarded-Groups", "admin"), ("X-Ssogate-Assertion", "eyJhbGciOiJub25lIn0.e30."),
             ("x-ssogate-assertion", "forged"), ("X-SSOGATE-ASSERTION", "forged"),
             ("X_Ssogate_Assertion", "forged"), ("X_Forwarded_Email", "boss@example.com"),
             ("x_forwarded_remote_user", "boss@example.com")]
    for name in SHAPES:
        path, headers = shape(name, KEY)
        # requests merges header names case-insensitively: send each spelling on its own.
        for spoofed, value in spoof:
            r = requests.get(gate.url + path, headers=dict(headers, **{spoofed: value}), timeout=5)
            assert r.status_code == 200 and r.json()["user"] == "api-key", (name, spoofed, r.text)
    for record in forwarded(upstream):
        assert not header_names(record) & {
            "x-forwarded-email", "x-forwarded-remote-user", "x-forwarded-groups", "x-ssogate-assertion",
            "x_ssogate_assertion", "x_forwarded_email", "x_forwarded_remote_user"}, record
    assert len(forwarded(upstream)) == len(SHAPES) * len(spoof)
    assert gate.metrics()["ssogate_spoofed_headers_total"] >= len(SHAPES) * 6


# ---- point 7: bad input gets a clear answer ---------------------------------------------------

MALFORMED = [
    ("/api/queries/1?api_key=", {}, "an empty api_key"),
    ("/api/queries/1?api_key", {}, "an empty api_key"),
    ("/api/queries/1?api_key=%s&api_key=%s" % (KEY, WRONG), {}, "api_key given more than once"),
    ("/api/queries/1?api%%5Fkey=%s" % KEY, {}, "encoded name"),
    ("/api/queries/1?api_key=a%20b", {}, "characters no Redash key has"),
    ("/api/queries/1?api_key=" + "a" * 257, {}, "longer than 256"),
    ("/api/../login?api_key=" + KEY, {}, "dot segments"),
    ("/api/%2e%2e/login?api_key=" + KEY, {}, "dot segments"),
    ("/api/queries/1", {"Authorization": "Key "}, "empty key"),
    ("/api/queries/1", {"Authorization": "key " + KEY}, "not 'Key <key>'"),
    ("/api/queries/1", {"Authorization": "Key  " + KEY}, "characters no Redash key has"),
    ("/api/queries/1", {"Authorization": "Key " + KEY + " extra"}, "characters no Redash key has"),
    ("/api/queries/1", {"Authorization": "Key " + "b" * 300}, "longer than 256"),
    ("/public/dashboards/..", {}, "characters no Redash token has"),
    ("/public/dashboards/../../api/users", {}, "characters no Redash token has"),
    ("/public/dashboards/%s%%2F..%%2Fx" % KEY, {}, "characters no Redash token has"),
    ("/public/dashboards/", {}, "no token"),
    ("/api/dashboards/public/%s/" % KEY, {}, "characters no Redash token has"),
    ("/public/dashboards/" + "c" * 300, {}, "longer than 256"),
]


@pytest.mark.parametrize("path,headers,reason", MALFORMED, ids=[m[2] + ":" + m[0][:40] for m in MALFORMED])
def test_malformed_credentials_get_400_and_never_reach_redash(gate_factory, upstream, path, headers, reason):
    from conftest import raw_request
    gate = cred_gate(gate_factory, upstream)
    # Raw bytes: an HTTP client library would tidy "%5F" and "/../" away before sending.
    head = "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % path
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    reply = raw_request(gate.port, (head + "\r\n").encode()).decode("latin-1")
    assert reply.startswith("HTTP/1.1 400"), reply[:300]
    assert "credential is malformed" in reply and "Set-Cookie" not in reply
    assert forwarded(upstream) == []
    wait_until(lambda: any(l.get("route") == "credential" for l in gate.access_log()), what="log")
    line = [l for l in gate.access_log() if l.get("route") == "credential"][-1]
    assert reason in line["error"] and line["status"] == 400
    assert gate.metrics()["ssogate_credential_refusals_total{reason=\"malformed\"}"] == 1


def test_two_authorization_headers_are_refused(gate_factory, upstream):
    from conftest import raw_request
    gate = cred_gate(gate_factory, upstream)
    reply = raw_request(gate.port, b"GET /api/queries/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Authorization: Key " + KEY.encode() + b"\r\nAuthorization: Key " + WRONG.encode() +
                        b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert forwarded(upstream) == []


# ---- point 2: brute force of app credentials is limited ---------------------------------------

def test_wrong_keys_past_the_limit_get_429_for_that_client_only(tmp_path, gate_factory, upstream):
    gate, idp = make_jwt_cred_gate(tmp_path, gate_factory, upstream,
                                   ratelimit={"credential_failures": "1/h", "burst": "3"})
    me = {"X-Forwarded-For": "203.0.113.7"}
    codes = []
    for i in range(6):
        path, headers = shape("api_key" if i % 2 else "authorization_key", WRONG)
        codes.append(requests.get(gate.url + path, headers=dict(headers, **me), timeout=5).status_code)
    # burst failures, one more (the one that finds the bucket empty), then refused.
    assert codes == [404, 404, 404, 404, 429, 429], codes
    r = requests.get(gate.url + "/public/dashboards/" + KEY, headers=me, timeout=5)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0  # even a good key, from there
    assert len(forwarded(upstream)) == 4
    # Another client (by the trusted hop) is not touched, nor is this one's session.
    r = requests.get(gate.url + "/public/dashboards/" + KEY, headers={"X-Forwarded-For": "198.51.100.1"}, timeout=5)
    assert r.status_code == 200
    with requests.Session() as c:
        c.headers.update(me)
        login(gate, c)
        r = c.get(gate.url + "/api/queries/1", timeout=5)
        assert r.status_code == 200 and r.json()["user"] == "alice@example.com"
    m = gate.metrics()
    assert m['ssogate_credential_requests_total{kind="authorization_key",outcome="failed"}'] == 2
    assert m['ssogate_credential_requests_total{kind="api_key",outcome="failed"}'] == 2
    assert m['ssogate_credential_refusals_total{reason="rate_limited"}'] == 3
    assert "past [ratelimit] credential_failures" in gate.errors()
    idp.stop()


def test_good_keys_are_never_counted(gate_factory, upstream):
    gate = cred_gate(gate_factory, upstream, ratelimit={"credential_failures": "1/h", "burst": "1"})
    for _ in range(5):
        path, headers = shape("authorization_key", KEY)
        assert requests.get(gate.url + path, headers=headers, timeout=5).status_code == 200


def test_the_failure_count_is_shared_through_redis(tmp_path, gate_factory, upstream):
    from test_store import Redis
    redis = Redis(str(tmp_path))
    try:
        extra = {"store": {"url": redis.url}, "ratelimit": {"credential_failures": "1/h", "burst": "2"},
                 "access": {"app_credentials": "redash", "public_paths": "/ping"}}
        a = gate_factory([upstream.url], name="a", extra=extra)
        b = gate_factory([upstream.url], name="b", extra=extra)
        me = {"X-Forwarded-For": "203.0.113.9"}
        wrong = "/api/queries/1?api_key=" + WRONG
        assert [requests.get(a.url + wrong, headers=me, timeout=5).status_code for _ in range(2)] == [404, 404]
        # b's first failure finds the shared bucket empty: b refuses this client from then on.
        assert requests.get(b.url + wrong, headers=me, timeout=5).status_code == 404
        assert requests.get(b.url + wrong, headers=me, timeout=5).status_code == 429
    finally:
        redis.stop()


# ---- point 3: the Redash preset ------------------------------------------------------------------

def test_check_prints_what_the_redash_preset_set(tmp_path, gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"upstream": {"app": "redash"},
                                               "access": {"public_paths": "/ping"}})
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert "app                  redash" in text
    for line in ("[upstream] health_path = /ping", "[session] logout_paths = /logout",
                 "[session] app_cookies = session remember_token",
                 "[access] public_paths = /static/ /api/config (added to the configured ones)",
                 "[access] app_credentials = redash"):
        assert line in text, text
    assert "public_paths         /static/ /api/config /ping" in text
    # The preset at work: Redash's unauthenticated paths and its credentials pass.
    for path in ("/static/app.js", "/api/config"):
        requests.get(gate.url + path, timeout=5)
    assert seen(upstream, "/static/app.js") and seen(upstream, "/api/config")
    assert requests.get(gate.url + "/api/queries/1?api_key=" + KEY, timeout=5).json()["user"] == "api-key"


def test_every_preset_key_can_be_overridden(gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"upstream": {"app": "redash", "health_path": "/ping"},
                                               "access": {"app_credentials": "", "public_paths": "/ping"},
                                               "session": {"app_cookies": "other"}})
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
    assert "app_credentials      - (off)" in out.stdout and "app_cookies          other" in out.stdout
    assert "[access] app_credentials = redash" not in out.stdout
    r = requests.get(gate.url + "/api/queries/1?api_key=" + KEY, allow_redirects=False, timeout=5)
    assert r.status_code == 401 and not seen(upstream, "/api/queries")


def test_generic_changes_nothing_and_unknown_apps_are_refused(tmp_path, gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"upstream": {"app": "generic"}, "access": {"public_paths": "/ping"}})
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
    assert "preset set" not in out.stdout and "app_credentials      - (off)" in out.stdout
    gate.settings["upstream"]["app"] = "metabase"
    gate.write()
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "[upstream] app" in out.stderr and "generic or redash" in out.stderr
    gate.settings["upstream"]["app"] = "generic"
    gate.settings["access"]["app_credentials"] = "metabase"
    gate.write()
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "empty (off) or redash" in out.stderr


# ---- point 4: the right answer for each kind of client without a session ---------------------------

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none",
            "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize("method,headers", [
    ("GET", {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "application/json, text/plain, */*"}),
    ("GET", {"Sec-Fetch-Mode": "same-origin", "Sec-Fetch-Dest": "empty", "Accept": "*/*"}),
    ("GET", {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Accept": "image/*"}),
    ("GET", {"Accept": "*/*", "User-Agent": "curl/7.88.1"}),
    ("GET", {"Accept": None}),
    ("POST", NAVIGATE),
    ("POST", {"Accept": "text/html"}),
    ("DELETE", {}),
], ids=["xhr-cors", "fetch-same-origin", "no-cors-image", "curl", "no-accept", "form-post", "post-html", "delete"])
def test_scripts_and_non_gets_get_401_with_www_authenticate(gate, upstream, method, headers):
    r = requests.request(method, gate.url + "/queries/1", headers=headers, allow_redirects=False, timeout=5)
    assert r.status_code == 401, r.headers
    assert r.headers["WWW-Authenticate"] == 'SSO realm="ssogate"'
    assert r.json() == {"error": "unauthenticated", "login": "/ssogate/login"}
    assert "Location" not in r.headers and not seen(upstream, "/queries/1")


@pytest.mark.parametrize("headers", [NAVIGATE, {"Accept": "text/html"}], ids=["fetch-metadata", "no-fetch-metadata"])
def test_navigations_are_redirected_to_the_login(gate, headers):
    r = requests.get(gate.url + "/queries/1?p=2", headers=headers, allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == "/ssogate/login?return_to=/queries/1%3Fp%3D2"


def test_a_frame_gets_a_sign_in_link_that_opens_a_new_window(gate):
    headers = dict(NAVIGATE, **{"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"})
    r = requests.get(gate.url + "/embed/query/1/visualization/2", headers=headers, allow_redirects=False, timeout=5)
    assert r.status_code == 401 and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    assert ('<a href="/ssogate/login?return_to=/embed/query/1/visualization/2" target="_blank" '
            'rel="noopener">') in r.text


def test_a_post_after_the_session_expired_is_401_never_a_redirect(idp_gate, upstream):
    gate, _ = idp_gate
    with requests.Session() as c:
        login(gate, c)
        assert c.get(gate.url + "/private/echo", headers={"Accept": "text/html"}).status_code == 200
        c.cookies.clear()  # the session cookie is gone (expired, or removed)
        r = c.post(gate.url + "/private/echo/save", data={"query": "select 1"},
                   headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}, allow_redirects=False)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'SSO realm="ssogate"'
    assert not seen(upstream, "/private/echo/save")
