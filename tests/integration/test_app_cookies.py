"""The app never acts as a different person than the gate's session says
(issue 18.1): the app's own login cookies ([session] app_cookies) are expired
when a new gate session begins and bound to the session they were issued
under; cookies from another session never reach the app.

The upstream is a stand-in for Redash's login, in Redash's real order
(getredash/redash, redash/authentication/__init__.py and Flask-Login's
LoginManager._load_user):
  1. the Flask `session` cookie's _user_id (load_user, the user_loader);
  2. else the `remember_token` cookie (Flask-Login restores _user_id from it);
  3. else request_loader -> jwt_token_load_user_from_request: the JWT header,
     verified against the JWKS fetched once and cached per worker
     (jwt_auth.get_public_keys.key_cache).  An existing user is that
     request's user only; a new one is created by create_and_login_user,
     which calls login_user(user, remember=True): a session cookie holding
     _user_id and a 31-day remember_token.
extend_session (a before_request hook) makes every session permanent, so
Flask sets the session cookie again on every response; itsdangerous signs a
timestamp into it, so its value changes: the stand-in changes it on every
response (a rotation on every request).
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests

from conftest import Idp, SANITIZED, free_port, login, rsa_key

REMEMBER_DAYS = 31  # Flask-Login's default REMEMBER_COOKIE_DURATION (Redash keeps it)



class RedashLogin:
    """Redash's way of knowing who asks (see the module docstring)."""

    def __init__(self, existing=("bob@example.com",)):
        self.secret = os.urandom(32)
        self.users = {}  # id -> email
        self.lock = threading.Lock()
        self.key_cache = None
        self.jwks_url = self.issuer = None
        self.seen = []  # (path, Cookie header, who, via) per request
        for email in existing:
            self.create(email)
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                app.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def create(self, email):
        with self.lock:
            uid = "%d-%s" % (len(self.users) + 1, os.urandom(4).hex())  # User.get_id(): id-api_key
            self.users[uid] = email
            return uid

    def sign(self, data):
        return hmac.new(self.secret, data.encode(), hashlib.sha256).hexdigest()

    def session_value(self, session):
        body = base64.urlsafe_b64encode(json.dumps(session).encode()).decode()
        return body + "." + self.sign(body)

    def open_session(self, value):
        if not value or "." not in value:
            return {}
        body, sig = value.rsplit(".", 1)
        if not hmac.compare_digest(sig, self.sign(body)):
            return {}
        return json.loads(base64.urlsafe_b64decode(body))

    def verify_jwt(self, token):
        if self.key_cache is None:  # fetched once per worker, never again
            self.key_cache = requests.get(self.jwks_url, timeout=5).json()
        for k in self.key_cache["keys"]:
            key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(k))
            try:
                payload = jwt.decode(token, key=key, audience="redash", algorithms=["RS256"])
            except jwt.PyJWTError:
                continue
            if payload["iss"] == self.issuer:
                return payload
        return None

    def handle(self, h):
        cookies = {}
        for pair in (h.headers.get("Cookie") or "").split(";"):
            name, _, value = pair.strip().partition("=")
            cookies.setdefault(name, value)  # Werkzeug: the first one wins
        session = self.open_session(cookies.get("session"))
        set_cookies = []
        user = via = None
        if "_user_id" in session:  # 1. the session
            user, via = self.users.get(session["_user_id"]), "session"
        elif "remember_token" in cookies and session.get("_remember") != "clear":  # 2.
            uid, _, sig = cookies["remember_token"].partition("|")
            if hmac.compare_digest(sig, self.sign("remember " + uid)) and uid in self.users:
                user, via = self.users[uid], "remember"
                session["_user_id"] = uid
        if user is None:  # 3. request_loader: the JWT
            token = h.headers.get("X-Ssogate-Assertion")
            payload = self.verify_jwt(token) if token else None
            if token and payload is None:
                h.send_response(401)
                h.end_headers()
                return
            if payload is not None:
                email = payload["email"]
                known = [uid for uid, e in self.users.items() if e == email]
                if known:
                    user, via = email, "jwt"
                else:  # create_and_login_user -> login_user(remember=True)
                    uid = self.create(email)
                    user, via = email, "jwt-created"
                    session["_user_id"] = uid
                    set_cookies.append("remember_token=%s|%s; Expires=%s; HttpOnly; Path=/" % (
                        uid, self.sign("remember " + uid),
                        formatdate(time.time() + REMEMBER_DAYS * 86400, usegmt=True)))
        session["_permanent"] = True  # extend_session
        session["_n"] = os.urandom(4).hex()  # itsdangerous' timestamp: a new value each time
        set_cookies.append("session=%s; Expires=%s; HttpOnly; Path=/" % (
            self.session_value(session), formatdate(time.time() + 6 * 3600, usegmt=True)))
        if h.path.startswith("/forge-binding"):  # a hostile app: ssogate's cookie is not its own
            set_cookies.append("ssogate_app=forged; Path=/")
        self.seen.append((h.path, h.headers.get("Cookie"), user, via))
        path = h.path.split("?")[0]
        if path == "/ping":
            status, body = 200, b"PONG."
        elif user is None:  # redirect_to_login: /api/ paths get a 404
            status, body = 404, b'{"message": "Couldn\'t find resource. Please login and try again."}'
        else:
            status, body = 200, json.dumps({"email": user, "via": via}).encode()
        h.send_response(status)
        for line in set_cookies:
            h.send_header("Set-Cookie", line)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture
def redash():
    r = RedashLogin()
    yield r
    r.stop()


def make_gate(tmp_path, gate_factory, redash, lifetime=None):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    session = {"logout_paths": "/logout", "app_cookies": "session remember_token"}
    if lifetime:
        session["lifetime"] = lifetime
    gate = gate_factory([redash.url], idp=idp, port=port,
                        extra={"headers": {"jwt": "X-Ssogate-Assertion",
                                           "jwt_key": rsa_key(str(tmp_path), "jwt.key")},
                               "session": session,
                               "access": {"public_paths": "/static/ /ping"}})
    redash.jwks_url = gate.url + "/ssogate/jwks.json"
    redash.issuer = gate.url
    return gate, idp


@pytest.fixture
def gate(tmp_path, gate_factory, redash):
    gate, idp = make_gate(tmp_path, gate_factory, redash)
    yield gate
    idp.stop()


def who(gate, client, path="/api/session"):
    r = client.get(gate.url + path, headers={"Accept": "application/json"})
    assert r.status_code in (200, 404), (r.status_code, r.text)
    return r.json() if r.status_code == 200 else None


def drop(client, name):
    for cookie in list(client.cookies):
        if cookie.name == name:
            client.cookies.clear(cookie.domain, cookie.path, cookie.name)


def put(client, name, value):
    """What a browser's devtools do: this cookie now has that value."""
    drop(client, name)
    client.cookies.set(name, value, domain="127.0.0.1", path="/")


def withheld(gate):
    with open(gate.proc.err_path) as f:
        return f.read().count("app cookies withheld from the app")


def test_next_person_after_the_gate_cookie_is_cleared_is_themselves(gate, redash):
    with requests.Session() as c:
        login(gate, c, "alice@example.com")  # alice is new at Redash: login_user(remember=True)
        assert who(gate, c) == {"email": "alice@example.com", "via": "jwt-created"}
        assert who(gate, c)["via"] == "session"
        assert {"session", "remember_token"} <= set(c.cookies.keys())
        drop(c, "ssogate")  # only ssogate's cookie goes
        assert "remember_token" in c.cookies.keys()
        login(gate, c, "bob@example.com")  # bob already has a Redash account
        assert who(gate, c) == {"email": "bob@example.com", "via": "jwt"}
        # The ACS expired alice's Redash cookies: none reached Redash as bob's.
        assert not any("remember_token" in (cookie or "") for _, cookie, user, _ in redash.seen
                       if user == "bob@example.com")


@pytest.mark.slow
@pytest.mark.skipif(SANITIZED, reason="a wall-clock minute; the ACS expiry it relies on runs under "
                    "sanitizers in test_next_person_after_the_gate_cookie_is_cleared_is_themselves")
def test_next_person_after_the_gate_session_expired_is_themselves(tmp_path, gate_factory, redash):
    gate, idp = make_gate(tmp_path, gate_factory, redash, lifetime="1m")
    with requests.Session() as c:
        login(gate, c, "alice@example.com")
        assert who(gate, c)["email"] == "alice@example.com"
        time.sleep(61)  # [session] lifetime is at least a minute
        r = c.get(gate.url + "/api/session", headers={"Accept": "application/json"})
        assert r.status_code == 401  # the gate's session is over; the browser keeps Redash's
        login(gate, c, "bob@example.com")
        assert who(gate, c) == {"email": "bob@example.com", "via": "jwt"}
    idp.stop()


def test_app_cookies_that_outlive_the_acs_expiry_are_withheld(gate, redash):
    """A browser that did not apply the ACS's expiry (or got alice's cookies
    back some other way) still cannot make bob's requests alice's."""
    with requests.Session() as c:
        login(gate, c, "alice@example.com")
        who(gate, c)
        alice = {k: c.cookies.get(k) for k in ("session", "remember_token", "ssogate_app")}
        c.cookies.clear()
        login(gate, c, "bob@example.com")
        for name, value in alice.items():
            if value is not None:
                put(c, name, value)
        assert who(gate, c) == {"email": "bob@example.com", "via": "jwt"}
        assert alice["ssogate_app"] and withheld(gate) == 1
        # The stale ones were expired in that answer and the app's new ones bound.
        assert who(gate, c) == {"email": "bob@example.com", "via": "jwt"}
        assert withheld(gate) == 1


def test_stolen_app_cookies_replayed_with_another_session_are_withheld(gate, redash):
    with requests.Session() as alice, requests.Session() as mallory:
        login(gate, alice, "alice@example.com")
        who(gate, alice)
        login(gate, mallory, "mallory@example.com")
        assert who(gate, mallory)["via"] == "jwt-created"
        assert who(gate, mallory)["via"] == "session"  # mallory's own binding cookie is set
        for name in ("session", "remember_token"):
            put(mallory, name, alice.cookies.get(name))
        assert who(gate, mallory)["email"] == "mallory@example.com"
        # Alice's binding cookie too: it binds alice's session id, not mallory's.
        for name in ("session", "remember_token", "ssogate_app"):
            put(mallory, name, alice.cookies.get(name))
        assert who(gate, mallory)["email"] == "mallory@example.com"
        assert withheld(gate) == 2
        assert who(gate, alice) == {"email": "alice@example.com", "via": "session"}


def test_app_session_keeps_working_and_rotating_under_its_session(gate, redash):
    with requests.Session() as c:
        login(gate, c, "carol@example.com")
        assert who(gate, c)["via"] == "jwt-created"
        values = set()
        for _ in range(3):  # every answer sets a new session value: each one stays bound
            assert who(gate, c) == {"email": "carol@example.com", "via": "session"}
            values.add(c.cookies.get("session"))
        assert len(values) == 3 and c.cookies.get("ssogate_app")
        # A public path with a live gate session gets the app's cookies too.
        assert who(gate, c, "/static/app.js") == {"email": "carol@example.com", "via": "session"}
        assert who(gate, c)["via"] == "session"
        # The remember cookie alone (Redash's session cookie gone) is a changed
        # jar: withheld, and the JWT says who it is.
        drop(c, "session")
        assert who(gate, c) == {"email": "carol@example.com", "via": "jwt"}
        assert withheld(gate) == 1


def test_stale_app_cookies_never_reach_a_public_path_without_a_session(gate, redash):
    with requests.Session() as c:
        login(gate, c, "alice@example.com")
        who(gate, c)
        drop(c, "ssogate")
        assert who(gate, c, "/static/app.js") is None  # anonymous: not alice
        assert withheld(gate) == 1


def test_logout_expires_every_app_cookie_and_the_binding(gate, redash):
    with requests.Session() as c:
        login(gate, c, "alice@example.com")
        who(gate, c)
        r = c.get(gate.url + "/logout", allow_redirects=False)
        assert r.status_code == 302
        expired = [line for line in r.raw.headers.getlist("Set-Cookie") if "Max-Age=0" in line]
        names = {line.split("=", 1)[0] for line in expired}
        assert {"session", "remember_token", "ssogate_app", "ssogate"} <= names
        assert not {"session", "remember_token", "ssogate_app"} & set(c.cookies.keys())


def test_the_acs_expires_every_app_cookie_and_the_binding(gate, redash):
    with requests.Session() as c:
        r = login(gate, c, "alice@example.com")
        assert r.status_code == 303
        lines = r.raw.headers.getlist("Set-Cookie")
        expired = {line.split("=", 1)[0] for line in lines if "Max-Age=0" in line}
        assert {"session", "remember_token", "ssogate_app"} <= expired


def test_the_app_can_neither_see_nor_set_the_binding_cookie(gate, redash):
    with requests.Session() as c:
        login(gate, c, "carol@example.com")
        who(gate, c)
        assert c.cookies.get("ssogate_app")
        r = c.get(gate.url + "/forge-binding", headers={"Accept": "application/json"})
        assert r.status_code == 200
        assert "forged" not in str(r.raw.headers.getlist("Set-Cookie"))
        assert not any("ssogate_app" in (cookie or "") for _, cookie, _, _ in redash.seen)
        assert who(gate, c)["via"] == "session"
