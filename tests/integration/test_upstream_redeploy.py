"""A Redash redeploy behind the gate costs nothing a user sees.

Behind ssogate, Redash no longer has the ALB's deregistration delay: ssogate
follows Redash's Cloud Map name (test_upstream_dns.py), and between a task's
stop and the moment ssogate's view of the name drops its address (the next
[upstream] resolve_interval plus the record's TTL) that address refuses
connections (or, once its network interface is gone, lets them time out).
Here the name keeps listing both addresses for the whole test, the worst
case of that window, and one of the two origins (tests/upstream/app.py on
127.0.0.7 and 127.0.0.8, one port) is killed under a steady request loop.

What ssogate does (proxy/forward/, the retry path): a connect that fails
(refused, unreachable, connect_timeout) sent nothing, so the request, whatever
its method, goes at once to another address of the same URL, and the failed
address is marked down (skipped for 5 s, and for as long as the prober's
probe of it fails; a re-resolution that no longer lists it drops it).  An idempotent request whose
new connection broke before any byte of the answer (the task died with the
request in its backlog) goes to another address too, as nginx's
proxy_next_upstream does; a non-idempotent one that was sent is never repeated.

Measured here (2 client threads on keep-alive connections, origin A
SIGKILLed 1.5 s into the loop, 7 s of requests after the kill, so the dead
address comes out of its 5 s "down" mark once; the name lists both addresses
throughout; two runs each):
  before (the binary without the retry elsewhere): 2 and 3 failed requests
      (502) of ~305 after the kill: one each time the dead address came up
      again, plus concurrent requests that picked it in the same instant;
  after: 0 failed of ~310; median latency 44 ms before and after the kill
      (the test origin's own, the same with either binary), slowest request
      after the kill 53 and 68 ms against 52 and 60 ms before it: a refused
      connect retried elsewhere costs no time a user notices.
A connect that times out instead (test_a_connect_that_times_out...) costs
the first request that meets it [upstream] connect_timeout; the prober's
failed probe then keeps the address skipped (before it: 2 such requests in
14 s, one per 5 s "down" period; after: at most 1).  docs/deploy/cutover.md
gives these figures for a real deployment.
"""
import re
import socket
import threading
import time

import pytest
import requests

from conftest import SLOW, wait_until
from test_upstream_dns import A, B, redeploy  # noqa: F401 (redeploy: the fixture two_origins builds on)

AFTER_KILL_S = 7  # longer than one "down" period (5 s): the dead address is tried again


@pytest.fixture
def two_origins(redeploy):
    """(gate, origins by address); the name lists both addresses throughout."""
    names, ups, start_gate = redeploy
    names.point(A, B)
    gate = start_gate(resolve_interval="1s")
    wait_until(lambda: {who(requests.get(gate.url + "/echo", timeout=5)) for _ in range(6)}
               == {A, B}, what="both addresses to answer")
    return gate, ups, ups[A].port


def who(response):
    return response.json()["server"].split(":")[0] if response.status_code == 200 else None


class Loop:
    """Clients sending GET /echo back to back on keep-alive connections,
    recording (start time, latency, status) of every request."""

    def __init__(self, gate, clients=2):
        self.gate, self.stopping, self.results = gate, threading.Event(), []
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        s = requests.Session()
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                status = s.get(self.gate.url + "/echo", timeout=10 * SLOW).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            self.results.append((t0, time.monotonic() - t0, status))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def summary(results):
    lat = sorted(x[1] for x in results)
    failed = [x for x in results if x[2] != 200]
    return {"requests": len(results), "failed": len(failed),
            "failures": sorted({str(x[2]) for x in failed}),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
            "max_ms": round(lat[-1] * 1000, 1) if lat else None}


@pytest.mark.concurrency
def test_an_origin_that_stops_under_steady_requests_costs_no_failed_request(two_origins):
    gate, ups, _ = two_origins
    loop = Loop(gate)
    time.sleep(1.5)
    killed_at = time.monotonic()
    ups[A].stop()  # SIGKILL: its port refuses at once, what it had in flight is reset
    time.sleep(AFTER_KILL_S)
    loop.stop()
    before = summary([x for x in loop.results if x[0] < killed_at])
    after = summary([x for x in loop.results if x[0] >= killed_at])
    print("redeploy cost: before the kill %s; after %s" % (before, after))
    assert before["failed"] == 0, before
    assert after["requests"] > 50, "too few requests to say anything: %s" % after
    assert after["failed"] == 0, "users saw failures: %s" % after
    # A refused connect retried elsewhere costs a connect, not a timeout.
    assert after["max_ms"] < before["max_ms"] + 500 * SLOW, (before, after)
    assert re.search(r"upstream redash\.test:\d+ \(127\.0\.0\.7\) failed before answering "
                     r"\(.*\); sent to redash\.test:\d+ \(127\.0\.0\.8\)", gate.errors())


def test_a_post_with_a_body_goes_to_the_address_that_answers(two_origins):
    """Nothing was sent to a refused address, so any method is retried, body
    and all; the refused address is then skipped (marked down)."""
    gate, ups, _ = two_origins
    ups[A].stop()
    body = b"x" * 100000
    for _ in range(10):
        r = requests.post(gate.url + "/echo", data=body, timeout=10 * SLOW)
        assert r.status_code == 200 and who(r) == B
        assert r.json()["body_len"] == len(body)
    # Marked down at the first refusal: the other requests did not knock on
    # it again (the ten take well under the 5 s it stays down).
    refusals = re.findall(r"\(127\.0\.0\.7\) failed before answering \(connection refused\)",
                          gate.errors())
    assert len(refusals) == 1, gate.errors()


def stuck_listener(host, port):
    """A port whose accept queue is full and never drained: the kernel drops
    further SYNs, so a connect to it times out, as one to a Fargate task whose
    network interface is already gone does."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    for _ in range(4):  # more than the queue holds; the extra ones stay in SYN_SENT
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex((host, port))
        fillers.append(c)
    time.sleep(0.2)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect((host, port))
        raise AssertionError("the stuck listener still accepts connections")
    except socket.timeout:
        pass
    finally:
        probe.close()
    return [listener] + fillers


def test_a_connect_that_times_out_goes_to_the_other_address(two_origins):
    gate, ups, port = two_origins
    ups[A].stop()
    held = stuck_listener(A, port)
    try:
        started = time.monotonic()
        seen = [requests.get(gate.url + "/echo", timeout=10 * SLOW) for _ in range(6)]
        took = time.monotonic() - started
        assert [(r.status_code, who(r)) for r in seen] == [(200, B)] * 6
        # One connect_timeout (2 s) at most, paid by one request: then A is down.
        assert took < 2 + 2 * SLOW, took
        assert re.search(r"\(127\.0\.0\.7\) failed before answering \(no connection within "
                         r"\[upstream\] connect_timeout\); sent to .*\(127\.0\.0\.8\)",
                         gate.errors()), gate.errors()
    finally:
        for s in held:
            s.close()


@pytest.mark.slow
def test_an_address_that_times_out_stays_skipped_while_its_probe_fails(two_origins):
    """The request that marks an address down skips it for 5 s; the prober,
    whose probe of it fails too, keeps it skipped until a probe passes.
    Without the prober's mark a request would pay connect_timeout (2 s here)
    each time the 5 s ran out: two or three times in these 14 s."""
    gate, ups, port = two_origins
    ups[A].stop()
    held = stuck_listener(A, port)
    try:
        slow, statuses, end = 0, set(), time.monotonic() + 14
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = requests.get(gate.url + "/echo", timeout=10 * SLOW)
            statuses.add((r.status_code, who(r)))
            slow += time.monotonic() - t0 > 1.5
            time.sleep(0.05)
        assert statuses == {(200, B)}
        assert slow <= 1, "%d requests waited for connect_timeout" % slow
    finally:
        for s in held:
            s.close()
