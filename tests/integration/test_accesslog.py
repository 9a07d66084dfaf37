"""The access line says why ssogate answered a request itself (issue 24): a
short stable "reason" token for every kind of refusal, none on a request the
application answered, and the HTTP status also under http.status_code (the
name Datadog knows: it reads "status" as the log level).

The tokens are the ones docs/monitoring.md lists, with a Datadog query each;
tests/deploy/test_datadog_names.py checks that list against the C sources."""
import os
import socket
import sys

import requests

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Idp, free_port, login, raw_request, wait_until  # noqa: E402
from test_credentials import KEY, WRONG, cred_gate  # noqa: E402

NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def line_of(gate, request_id):
    """The access line of the request sent with X-Request-Id request_id."""
    wait_until(lambda: any(l.get("request_id") == request_id for l in gate.access_log()),
               what="access line of %s" % request_id)
    return next(l for l in gate.access_log() if l.get("request_id") == request_id)


def get(gate, path, request_id, **kw):
    headers = dict(kw.pop("headers", {}), **{"X-Request-Id": request_id})
    return requests.get(gate.url + path, headers=headers, allow_redirects=False, timeout=10, **kw)


def assert_reason(line, status, reason):
    assert line["status"] == status and line["http"] == {"status_code": status}, line
    assert line.get("reason") == reason, line


def test_an_answer_of_the_application_has_no_reason(gate):
    r = get(gate, "/echo", "ok-1")
    assert r.status_code == 200
    line = line_of(gate, "ok-1")
    assert "reason" not in line and line["http"] == {"status_code": 200}
    # The application's own 404 is its answer, not a refusal of ours.
    assert get(gate, "/status/404", "app-404").status_code == 404
    line = line_of(gate, "app-404")
    assert line["status"] == 404 and "reason" not in line


def test_refusals_of_the_sign_in_side_name_their_reason(idp_gate):
    gate, _ = idp_gate
    # No session: a script gets 401, a browser 302 to the login; both say so.
    assert get(gate, "/private/x", "nosession-api", headers={"Accept": "application/json"}).status_code == 401
    assert_reason(line_of(gate, "nosession-api"), 401, "no_session")
    assert get(gate, "/private/x", "nosession-nav", headers=NAVIGATE).status_code == 302
    assert_reason(line_of(gate, "nosession-nav"), 302, "no_session")
    assert get(gate, "/ssogate/session", "nosession-me").status_code == 401
    assert_reason(line_of(gate, "nosession-me"), 401, "no_session")

    # A person the [access] rules do not allow.
    with requests.Session() as c:
        r = login(gate, c, email="mallory@elsewhere.org")
        assert r.status_code == 403
    wait_until(lambda: any(l["path"] == "/ssogate/acs" for l in gate.access_log()), what="the ACS line")
    denied = [l for l in gate.access_log() if l["path"] == "/ssogate/acs"]
    assert_reason(denied[-1], 403, "access_denied")
    assert denied[-1]["user"] == "mallory@elsewhere.org"

    # A sign-in response that does not verify.
    r = requests.post(gate.url + "/ssogate/acs", data={"SAMLResponse": "bm90IFNBTUw="},
                      headers={"X-Request-Id": "acs-bad"}, timeout=10)
    assert r.status_code == 400
    assert_reason(line_of(gate, "acs-bad"), 400, "signin_failed")

    # A login flood from one address.
    for i in range(14):
        r = get(gate, "/ssogate/login", "flood-%d" % i, headers={"X-Forwarded-For": "203.0.113.9"})
        if r.status_code == 429:
            break
    assert r.status_code == 429
    assert_reason(line_of(gate, "flood-%d" % i), 429, "rate_limited")


def test_bad_requests_and_client_timeouts_name_their_reason(gate_factory, upstream):
    gate = gate_factory([upstream.url], extra={"server": {"client_timeout": "1s"}})
    reply = raw_request(gate.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: two-lengths\r\n"
                                   b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert_reason(line_of(gate, "two-lengths"), 400, "bad_request")
    reply = raw_request(gate.port, b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   b"X-Request-Id: not-a-path\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert_reason(line_of(gate, "not-a-path"), 400, "bad_request")
    # A head that never ends: 408 at client_timeout.
    with socket.create_connection(("127.0.0.1", gate.port)) as s:
        s.sendall(b"GET /stalled HTTP/1.1\r\nHost: x\r\nX-Half")
        wait_until(lambda: any(l["path"] == "/stalled" for l in gate.access_log()), timeout=15,
                   what="the stalled request's line")
    line = next(l for l in gate.access_log() if l["path"] == "/stalled")
    assert_reason(line, 408, "client_timeout")


def test_upstream_failures_name_their_reason(gate_factory, upstream):
    down = gate_factory(["http://127.0.0.1:%d" % free_port()], name="down")
    assert get(down, "/echo", "refused-connect").status_code == 502
    assert_reason(line_of(down, "refused-connect"), 502, "upstream_unreachable")

    slow = gate_factory([upstream.url], name="slow", extra={"upstream": {"timeout": "1s"}})
    assert get(slow, "/slow?s=4", "too-slow").status_code == 504
    assert_reason(line_of(slow, "too-slow"), 504, "upstream_timeout")


def test_sign_in_without_an_identity_provider_is_unavailable(gate):
    assert get(gate, "/ssogate/login", "no-idp").status_code == 503
    assert_reason(line_of(gate, "no-idp"), 503, "idp_unavailable")


def test_sign_in_without_the_store_is_unavailable(tmp_path, gate_factory, upstream):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    try:
        gate = gate_factory([upstream.url], idp=idp, port=port,
                            extra={"store": {"url": "redis://127.0.0.1:%d/0" % free_port()}})
        assert get(gate, "/ssogate/login", "no-store").status_code == 503
        assert_reason(line_of(gate, "no-store"), 503, "store_unavailable")
    finally:
        idp.stop()


def test_size_method_and_path_refusals_name_their_reason(gate):
    reply = raw_request(gate.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   b"X-Request-Id: too-large\r\nContent-Length: 9999999\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert_reason(line_of(gate, "too-large"), 413, "body_too_large")
    reply = raw_request(gate.port, b"TRACE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   b"X-Request-Id: trace\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 405"), reply
    assert_reason(line_of(gate, "trace"), 405, "method_not_allowed")
    assert get(gate, "/ssogate/nothing-here", "nope").status_code == 404
    assert_reason(line_of(gate, "nope"), 404, "not_found")


def test_credential_refusals_name_their_reason(gate_factory, upstream):
    gate = cred_gate(gate_factory, upstream, ratelimit={"credential_failures": "1/h", "burst": "2"})
    reply = raw_request(gate.port, b"GET /api/queries/1?api_key= HTTP/1.1\r\nHost: x\r\n"
                                   b"Connection: close\r\nX-Request-Id: empty-key\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply
    line = line_of(gate, "empty-key")
    assert_reason(line, 400, "malformed_credential")
    assert line["route"] == "credential" and "empty" in line["error"]  # the detail stays in "error"
    me = {"X-Forwarded-For": "203.0.113.7", "Authorization": "Key " + WRONG}
    codes = [get(gate, "/api/queries/1", "wrong-%d" % i, headers=me).status_code for i in range(5)]
    assert codes[-1] == 429, codes
    assert_reason(line_of(gate, "wrong-4"), 429, "credential_rate_limited")
    # The application's own refusal of a wrong key is not ours.
    assert "reason" not in line_of(gate, "wrong-0") and codes[0] == 404
    assert KEY  # the good key is never needed here


def test_health_refusal_is_named_when_health_lines_are_logged(gate_factory):
    """/readyz's 503 says not_ready (health lines are logged at debug level only)."""
    gate = gate_factory(["http://127.0.0.1:%d" % free_port()], extra={"log": {"level": "debug"}})
    r = get(gate, "/readyz", "not-ready")
    assert r.status_code == 503
    assert_reason(line_of(gate, "not-ready"), 503, "not_ready")
