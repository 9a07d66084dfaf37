"""The drain after SIGTERM, as an ALB (or any late client) sees it.

ECS deregisters the target, then sends SIGTERM (docs/deploy/README.md,
"Stopping a task").  From then until the last request in flight has ended
(or [server] drain_timeout), ssogate keeps answering on its listening
sockets: /readyz 503 with "shutdown": "draining", /healthz 200, other
requests served, every answer with Connection: close so that a keep-alive
client moves to another target.  Then each worker closes its socket and a new
connection is refused at once.  The bug this guards: the workers stopped
accepting (MHD_quiesce_daemon) but the socket stayed open, so the kernel
completed handshakes nobody accepted and a health check hung until it gave up.
"""
import http.client
import json
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import SLOW, wait_until

SLOW_S = 3  # the request in flight at SIGTERM
ECHO = b"GET /echo HTTP/1.1\r\nHost: gate\r\n\r\n"


def get(gate, path, conn=None):
    """(response, body) on a new connection (or conn), answered within a second."""
    c = conn or http.client.HTTPConnection("127.0.0.1", gate.port, timeout=1 * SLOW)
    c.request("GET", path)
    r = c.getresponse()
    return r, r.read()


def read_one(sock, request):
    """Sends request on sock and reads exactly one response: (response, body)."""
    sock.sendall(request)
    r = http.client.HTTPResponse(sock)
    r.begin()
    return r, r.read()


def start_slow(gate, upstream):
    got = {}
    t = threading.Thread(target=lambda: got.update(
        r=requests.get(gate.url + "/slow?s=%d" % SLOW_S, timeout=30 * SLOW)))
    t.start()
    wait_until(lambda: any(x["target"].startswith("/slow") for x in upstream.requests_seen()),
               what="the slow request to reach the upstream")
    return t, got


@pytest.mark.concurrency
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_draining_gate_answers_new_connections_then_refuses_them(gate_factory, upstream,
                                                                  workers):
    gate = gate_factory([upstream.url],
                        extra={"server": {"workers": workers, "drain_timeout": "%ds" % (SLOW_S + 5)}})
    # A keep-alive connection from before the drain (raw, so that no client
    # library reconnects behind our back).
    kept = socket.create_connection(("127.0.0.1", gate.port), timeout=1 * SLOW)
    r, _ = read_one(kept, ECHO)
    assert r.status == 200 and r.getheader("Connection") is None

    t, slow = start_slow(gate, upstream)
    t0 = time.monotonic()
    gate.proc.p.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: draining" in gate.errors(), what="the drain to begin")

    # New connections, several (each is hashed to one of the workers' sockets:
    # a worker with nothing in flight has already closed its own).
    for _ in range(8):
        r, body = get(gate, "/readyz")
        assert r.status == 503
        assert r.getheader("Connection") == "close"
        assert b'"shutdown":"draining"' in body
        r, body = get(gate, "/healthz")
        assert (r.status, body) == (200, b"ok\n")
        assert r.getheader("Connection") == "close"
    r, body = get(gate, "/echo")
    assert r.status == 200 and json.loads(body)["target"] == "/echo"
    assert r.getheader("Connection") == "close"

    # The keep-alive connection from before: answered once more with
    # Connection: close, then closed by ssogate.  With two workers it may sit
    # on the one with nothing in flight, whose drain ended at once, closing
    # its idle connections: then it is closed without an answer (a client
    # sends again on a new connection, RFC 9112 section 9.3.1).
    try:
        r, _ = read_one(kept, ECHO)
        assert r.status == 200 and r.getheader("Connection") == "close"
        assert kept.recv(1) == b"", "ssogate kept the connection open"  # a timeout: kept open
    except (http.client.RemoteDisconnected, ConnectionResetError):
        assert workers == "2", "the worker with the slow request closed an idle connection"
    kept.close()

    assert t.is_alive(), "the slow request ended before the checks: the test proves nothing"
    t.join(30 * SLOW)
    assert slow["r"].status_code == 200 and slow["r"].text == "slow done"
    assert gate.proc.p.wait((SLOW_S + 5) * SLOW) == 0
    assert time.monotonic() - t0 < (SLOW_S + 5) * SLOW, "the drain outlived drain_timeout"

    # After the drain: refused at once, not a handshake left hanging.
    t1 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", gate.port), timeout=3)
    assert time.monotonic() - t1 < 0.5


@pytest.mark.concurrency
def test_a_worker_with_nothing_in_flight_stops_listening_at_once(gate_factory, upstream):
    """Two workers, one slow request: the idle worker's socket closes at the
    SIGTERM, so no new connection waits on a socket nobody serves."""
    gate = gate_factory([upstream.url],
                        extra={"server": {"workers": "2", "drain_timeout": "%ds" % (SLOW_S + 5)}})
    t, _ = start_slow(gate, upstream)
    gate.proc.p.send_signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: draining" in gate.errors(), what="the drain to begin")
    time.sleep(0.3)  # the idle worker's loop notices the drain within a housekeeping tick
    started = time.monotonic()
    for _ in range(30):
        r, _ = get(gate, "/healthz")
        assert r.status == 200
    assert time.monotonic() - started < 5 * SLOW
    t.join(30 * SLOW)
    assert gate.proc.p.wait(10 * SLOW) == 0
