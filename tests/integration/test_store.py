"""Many tasks, one gate (issue 5): login rate limits, and two ssogate processes
sharing a real redis-server for replay ids, logouts and rate-limit buckets."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import SLOW, Proc, free_port, login, two_gates_sharing_a_store, wait_until
from test_saml import post_acs, start_login

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, tmp, port=None):
        self.tmp, self.port = tmp, port or free_port()
        self.start()

    def start(self):
        self.proc = Proc([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", self.tmp], self.tmp, "redis-%d" % time.monotonic_ns())

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until(up, what="redis")

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def stop(self):
        self.proc.stop()


def rate_limited(gate):
    return gate.metrics()["ssogate_rate_limited_total"]


# ---- rate limits (memory store) -------------------------------------------------------------

def test_login_flood_gets_429_with_retry_after(idp_gate):
    gate, _ = idp_gate
    codes = [requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5) for _ in range(14)]
    limited = [r for r in codes if r.status_code == 429]
    assert [r.status_code for r in codes[:10]] == [302] * 10  # burst 10
    assert limited and all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert rate_limited(gate) == len(limited)
    assert "login rate limit" in gate.errors()


def test_health_checks_and_sessions_are_never_limited(idp_gate):
    gate, idp = idp_gate
    with requests.Session() as c:
        login(gate, c)
        for _ in range(12):
            requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5)
        assert requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5).status_code == 429
        for _ in range(50):
            assert requests.get(gate.url + "/healthz", timeout=5).status_code == 200
            assert c.get(gate.url + "/private/echo", timeout=5).status_code == 200


def test_the_limit_is_per_client_address_from_trusted_hops(idp_gate):
    gate, _ = idp_gate
    for _ in range(12):
        requests.get(gate.url + "/ssogate/login", headers={"X-Forwarded-For": "9.9.9.9, 1.2.3.4"},
                     allow_redirects=False, timeout=5)
    # Another client (by the trusted hop) still gets in; a spoofed left part does not change the bucket.
    r = requests.get(gate.url + "/ssogate/login", headers={"X-Forwarded-For": "5.6.7.8"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 302
    r = requests.get(gate.url + "/ssogate/login", headers={"X-Forwarded-For": "8.8.8.8, 1.2.3.4"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 429


# ---- two tasks, one Redis ------------------------------------------------------------------------

@pytest.fixture
def two_gates(tmp_path, gate_factory, upstream):
    redis = Redis(str(tmp_path))
    yield from two_gates_sharing_a_store(tmp_path, gate_factory, upstream, redis, {"url": redis.url})


@pytest.mark.concurrency
def test_login_started_on_a_completes_on_b(two_gates):
    a, b, idp, _ = two_gates
    with requests.Session() as c:
        rid, _ = start_login(a, c)
        r = post_acs(b, c, idp.response(in_response_to=rid))
        assert r.status_code == 303
        assert c.get(a.url + "/ssogate/session").json()["email"] == "alice@example.com"
        assert c.get(b.url + "/ssogate/session").json()["email"] == "alice@example.com"


@pytest.mark.concurrency
def test_assertion_accepted_on_a_is_a_replay_on_b(two_gates):
    a, b, idp, _ = two_gates
    with requests.Session() as c:
        rid, _ = start_login(a, c)
        state = c.cookies.get("ssogate_state")
        saml = idp.response(in_response_to=rid)
        assert post_acs(a, c, saml).status_code == 303
        c.cookies.set("ssogate_state", state, path="/ssogate/")
        assert post_acs(b, c, saml).status_code == 403
    assert b.metrics()['ssogate_logins_failed_total{reason="replay"}'] == 1


@pytest.mark.concurrency
def test_logout_on_a_is_refused_on_b(two_gates):
    a, b, idp, _ = two_gates
    with requests.Session() as c:
        login(a, c)
        cookie = c.cookies.get("ssogate")
        assert requests.get(b.url + "/ssogate/session", cookies={"ssogate": cookie}, timeout=5).status_code == 200
        c.get(a.url + "/ssogate/logout", allow_redirects=False)
    wait_until(lambda: requests.get(b.url + "/ssogate/session", cookies={"ssogate": cookie},
                                    timeout=5).status_code == 401, timeout=5, what="revocation on b")


@pytest.mark.concurrency
def test_rate_limit_is_shared(two_gates):
    a, b, _, _ = two_gates
    codes = []
    for i in range(14):
        gate = a if i % 2 == 0 else b
        codes.append(requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5).status_code)
    assert codes[:10] == [302] * 10  # burst 10, counted once over both tasks
    assert 429 in codes[10:]


@pytest.mark.concurrency
def test_redis_down_fails_logins_closed_and_keeps_sessions(two_gates):
    a, b, idp, redis = two_gates
    with requests.Session() as c:
        login(a, c)
        redis.stop()
        r = requests.get(a.url + "/ssogate/login", allow_redirects=False, timeout=5)
        assert r.status_code == 503
        assert c.get(a.url + "/private/echo", timeout=5).status_code == 200  # existing session
        assert requests.get(a.url + "/healthz", timeout=5).status_code == 200
        wait_until(lambda: requests.get(a.url + "/readyz", timeout=5).json()["checks"]["store"] != "ok",
                   timeout=10, what="readyz reports the store")
        redis.start()
        wait_until(lambda: requests.get(a.url + "/ssogate/login", allow_redirects=False,
                                        timeout=5).status_code == 302, timeout=10, what="login heals")
        wait_until(lambda: requests.get(a.url + "/readyz", timeout=5).status_code == 200, timeout=12,
                   what="ready again")
