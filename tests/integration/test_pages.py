"""The pages a confused person sees (issue 24): a support contact on every error page,
"Sign in with another account", a tile in Google's app launcher (an unsolicited
response) that starts a normal sign-in when IdP-initiated login is off, and a 429 that
says when to retry.  The unsolicited responses are the test IdP's (tests/idp), signed
with its key, without InResponseTo, as Google sends for a launcher tile."""
import re

import pytest
import requests

from conftest import Idp, free_port, login, raw_request
from test_login_limits import sign_in
from test_saml import post_acs, start_login

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CONTACT = "it-help@example.com"


@pytest.fixture
def pages_gate(tmp_path, gate_factory, upstream):
    """A gate with a support contact and the default login limits: (gate, idp)."""
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    try:
        yield gate_factory([upstream.url], idp=idp, port=port,
                           extra={"pages": {"support_contact": CONTACT}}), idp
    finally:
        idp.stop()


def has_contact(text):
    return '<a href="mailto:%s">%s</a>' % (CONTACT, CONTACT) in text


def set_cookies(r):
    return r.raw.headers.getlist("Set-Cookie")


# ---- support contact ------------------------------------------------------------------------

def test_sign_in_failed_shows_the_contact_and_another_account(pages_gate):
    gate, idp = pages_gate
    with requests.Session() as c:
        rid, _ = start_login(gate, c)
        r = post_acs(gate, c, idp.response(in_response_to="_someone_else"))
    assert r.status_code == 403 and "Sign-in failed" in r.text
    assert has_contact(r.text)
    assert '<a href="/ssogate/logout?next=login">Sign in with another account</a>' in r.text
    assert "Request id: %s" % r.headers["X-Request-Id"] in r.text


def test_access_denied_shows_the_contact_and_another_account(pages_gate):
    gate, _ = pages_gate
    with requests.Session() as c:
        r = login(gate, c, email="mallory@elsewhere.test")
    assert r.status_code == 403 and "Access denied" in r.text
    assert "mallory@elsewhere.test is not allowed" in r.text
    assert has_contact(r.text)
    assert "/ssogate/logout?next=login" in r.text


def test_another_account_signs_out_then_starts_a_sign_in(pages_gate):
    gate, _ = pages_gate
    with requests.Session() as c:
        assert login(gate, c).status_code == 303
        r = c.get(gate.url + "/ssogate/logout?next=login", allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == "/ssogate/login"
        assert any(v.startswith("ssogate=;") for v in set_cookies(r))
        r = c.get(gate.url + r.headers["Location"], allow_redirects=False)
        assert r.status_code == 302 and "SAMLRequest=" in r.headers["Location"]
        # A plain logout still ends on the signed-out page.
        r = c.get(gate.url + "/ssogate/logout", allow_redirects=False)
        assert r.headers["Location"] == "/ssogate/signed-out"


def test_503_shows_the_contact(tmp_path, gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"pages": {"support_contact": "https://help.example.com/sso"}})
    r = requests.get(gate.url + "/ssogate/login", timeout=5)
    assert r.status_code == 503
    assert 'Contact <a href="https://help.example.com/sso">https://help.example.com/sso</a>' in r.text


def test_no_contact_configured_no_contact_line(idp_gate):
    gate, idp = idp_gate
    r = post_acs(gate, requests.Session(), "bm90IHhtbA==")
    assert r.status_code == 400 and "Sign-in failed" in r.text and "Need help" not in r.text


def test_a_success_page_carries_no_contact(pages_gate):
    gate, _ = pages_gate
    r = requests.get(gate.url + "/ssogate/signed-out", timeout=5)
    assert r.status_code == 200 and "Need help" not in r.text


# ---- 429 ---------------------------------------------------------------------------------------

def test_browsers_get_an_html_429_that_says_when_and_retries(pages_gate):
    gate, _ = pages_gate
    for _ in range(10):
        requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5)
    r = requests.get(gate.url + "/ssogate/login?return_to=%2Fqueries%2F7", headers=BROWSER,
                     allow_redirects=False, timeout=5)
    assert r.status_code == 429
    assert r.headers["Content-Type"].startswith("text/html")
    seconds = int(r.headers["Retry-After"])
    assert seconds >= 1
    assert "Please try again in %d second" % seconds in r.text
    assert ('<meta http-equiv="refresh" content="%d;url=/ssogate/login?return_to=%%2Fqueries%%2F7">'
            % seconds) in r.text
    assert has_contact(r.text)


def test_the_429_page_escapes_the_url_it_retries(pages_gate):
    gate, _ = pages_gate
    for _ in range(10):
        requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5)
    # Sent raw: quotes and angle brackets as they are, in the request-target.
    reply = raw_request(gate.port, b'GET /ssogate/login?return_to="><script>alert(1)</script>&x=\' HTTP/1.1\r\n'
                                   b"Host: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n").decode()
    assert reply.startswith("HTTP/1.1 429"), reply[:200]
    body = reply.split("\r\n\r\n", 1)[1]
    assert "<script>" not in body
    meta = re.search(r'<meta http-equiv="refresh" content="([^"]*)">', body).group(1)
    assert "<" not in meta and ">" not in meta and "'" not in meta
    assert "&quot;&gt;&lt;script&gt;" in meta


def test_scripts_get_the_plain_429_as_before(pages_gate):
    gate, _ = pages_gate
    for _ in range(10):
        requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5)
    r = requests.get(gate.url + "/ssogate/login", headers={"Accept": "application/json"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 429 and r.headers["Content-Type"].startswith("text/plain")
    assert int(r.headers["Retry-After"]) >= 1
    assert r.text.startswith("429 Too Many Requests\n") and "<" not in r.text


def test_an_acs_429_page_starts_a_new_sign_in_to_the_same_place(pages_gate):
    gate, _ = pages_gate
    with requests.Session() as c:
        start_login(gate, c, return_to="/queries/9")
        for _ in range(5):
            post_acs(gate, c, "bm90IHhtbA==")
        r = c.post(gate.url + "/ssogate/acs", data={"SAMLResponse": "bm90IHhtbA=="}, headers=BROWSER,
                   allow_redirects=False)
    assert r.status_code == 429 and r.headers["Content-Type"].startswith("text/html")
    assert 'url=/ssogate/login?return_to=/queries/9"' in r.text


# ---- a tile in Google's app launcher (IdP-initiated) with allow_idp_initiated off -------------

def test_a_launcher_tile_starts_a_normal_sign_in(pages_gate):
    gate, idp = pages_gate
    with requests.Session() as c:
        r = post_acs(gate, c, idp.response(in_response_to=None), relay="/dashboards/3")
        assert r.status_code == 303
        assert r.headers["Location"] == "/ssogate/login?return_to=/dashboards/3"
        assert not any(v.startswith("ssogate=") for v in set_cookies(r))
        # ... which goes to the IdP and comes back solicited, to the tile's start page.
        r = sign_in(c, gate, login_path=r.headers["Location"])
        assert r.status_code == 303 and r.headers["Location"] == "/dashboards/3"
        assert c.get(gate.url + "/ssogate/session").json()["email"] == "alice@example.com"
    assert "unsolicited (IdP-initiated) response not used" in gate.errors()


def test_an_unsolicited_response_is_never_used(pages_gate):
    """Posted by an attacker into a victim's browser: nothing in it counts.  The
    victim lands on an ordinary sign-in as themselves, not as mallory."""
    gate, idp = pages_gate
    with requests.Session() as victim:
        r = post_acs(gate, victim, idp.response(in_response_to=None, name_id="mallory@example.com"),
                     relay="https://evil.example/")
        assert r.status_code == 303 and r.headers["Location"] == "/ssogate/login?return_to=/"
        assert set_cookies(r) == []
        assert victim.get(gate.url + "/ssogate/session").status_code == 401
        r = sign_in(victim, gate, email="victim@example.com", login_path=r.headers["Location"])
        assert r.status_code == 303 and r.headers["Location"] == "/"
        assert victim.get(gate.url + "/ssogate/session").json()["email"] == "victim@example.com"
    assert "mallory" not in "".join(str(l) for l in gate.access_log()) + gate.errors()


def test_an_unsolicited_response_mid_login_fails_instead_of_looping(pages_gate):
    # A browser with a login in flight (a valid state cookie) that gets an unsolicited
    # answer anyway (an IdP that ignores our requests) is not sent round again.
    gate, idp = pages_gate
    with requests.Session() as c:
        start_login(gate, c)
        r = post_acs(gate, c, idp.response(in_response_to=None))
    assert r.status_code == 403 and "Sign-in failed" in r.text


def test_a_forged_unsolicited_response_is_sign_in_failed(pages_gate):
    # Only the IdP's own signature gets the restart: anything else fails as before.
    gate, idp = pages_gate
    r = post_acs(gate, requests.Session(), idp.response(sign="none", in_response_to=None))
    assert r.status_code == 403 and "Sign-in failed" in r.text


def test_with_allow_idp_initiated_the_tile_signs_in_at_once(tmp_path, gate_factory, upstream):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    try:
        gate = gate_factory([upstream.url], idp=idp, port=port,
                            extra={"saml": {"allow_idp_initiated": "true"}})
        r = post_acs(gate, requests.Session(), idp.response(in_response_to=None), relay="/q")
        assert r.status_code == 303 and r.headers["Location"] == "/q"
        assert any(v.startswith("ssogate=") for v in set_cookies(r))
    finally:
        idp.stop()
