"""Hostile and broken upstreams: every framing an upstream may get wrong has
one defined outcome.  Before the response head went to the client: 502 and a
log line naming the reason.  After it: the response is cut (the connection
closes before the announced end), never presented as whole.

The upstream here is a raw-socket server of our own (one selector loop, no
HTTP library, so it can say what a real server never would); each request is
recorded with the connection it came on, so retries are proven from the
upstream's side.  The framings follow RFC 9112 (sections 6, 7.1) and the
interim answers RFC 9110 section 15.2.
"""
import collections
import heapq
import re
import resource
import selectors
import socket
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import SLOW, wait_until

FAST_TARGET_S = 0.5 * SLOW


class HostileUpstream:
    """Answers by path; logs (connection number, request number on it, method, path)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = []
        self.lock = threading.Lock()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.timers = []  # (when, seq, fn)
        self.seq = 0
        self.conns = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def seen(self, path_prefix=""):
        with self.lock:
            return [e for e in self.log if e[3].startswith(path_prefix)]

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def later(self, delay, fn):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.seq, fn))

    def run(self):
        while not self.stopping:
            timeout = 0.05
            if self.timers:
                timeout = max(0, min(timeout, self.timers[0][0] - time.monotonic()))
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    self.accept()
                else:
                    self.readable(key.fileobj, key.data)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()

    def accept(self):
        try:
            c, _ = self.sock.accept()
        except BlockingIOError:
            return
        c.setblocking(False)
        self.conns += 1
        state = {"id": self.conns, "buf": b"", "n": 0, "closed": False}
        self.sel.register(c, selectors.EVENT_READ, state)

    def close(self, c, state):
        if not state["closed"]:
            state["closed"] = True
            try:
                self.sel.unregister(c)
            except (KeyError, ValueError):
                pass
            c.close()

    def send(self, c, state, data):
        if state["closed"]:
            return
        c.setblocking(True)
        try:
            c.sendall(data)
        except OSError:
            self.close(c, state)
        c.setblocking(False)

    def readable(self, c, state):
        try:
            data = c.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.close(c, state)
            return
        state["buf"] += data
        while b"\r\n\r\n" in state["buf"]:
            head, rest = state["buf"].split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                       for l in lines[1:] if ":" in l}
            length = int(headers.get("content-length", "0"))
            if len(rest) < length:
                return
            state["buf"] = rest[length:]
            state["n"] += 1
            with self.lock:
                self.log.append((state["id"], state["n"], method, target))
            self.answer(c, state, method, target)

    def answer(self, c, state, method, target):
        url = urllib.parse.urlsplit(target)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path.rsplit("/", 1)[-1]
        send = lambda data: self.send(c, state, data)
        if path == "ok":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == "chunk-ext":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;name=value\r\nhello\r\n6 ; quoted=\"x\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        elif path == "bad-chunk":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        elif path == "short-chunk":  # the chunk says 3, 5 come
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n")
        elif path == "more":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA-BYTES")
        elif path == "fewer":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            self.later(0.5, lambda: self.close(c, state))
        elif path == "big-head":
            filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(70))
            send(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nok")
        elif path == "nul-header":
            send(b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok")
        elif path == "cr-header":
            send(b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\nok")
        elif path == "interim":
            n = int(q.get("n", "1"))
            send(b"HTTP/1.1 100 Continue\r\n\r\n" * n
                 + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
        elif path == "race":
            # The first request on a connection is answered with keep-alive; any later one
            # is logged, then the connection closes unanswered.
            if state["n"] == 1:
                send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            else:
                self.close(c, state)
        elif path == "close-soon":  # keep-alive promised, then closed while idle
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            self.later(0.1, lambda: self.close(c, state))
        elif path == "drip":
            n, gap = int(q.get("n", "5")), float(q.get("gap", "0.2"))
            send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            for i in range(n):
                self.later(gap * (i + 1), lambda: send(b"d"))
        elif path == "slow":
            self.later(float(q.get("s", "1")),
                       lambda: send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"))
        else:
            send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def hostile():
    h = HostileUpstream()
    yield h
    h.stop()


@pytest.fixture
def hgate(gate_factory, hostile):
    # One worker: the second request reuses the first one's connection.
    return gate_factory([hostile.url], extra={"server": {"workers": "1"},
                                              "upstream": {"timeout": "2s"}})


def raw_get(gate, path, timeout=10):
    """One request on a fresh client connection; everything until the gate closes it."""
    s = socket.create_connection(("127.0.0.1", gate.port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n" % path.encode())
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def assert_502_naming(gate, reply, reason):
    assert reply.startswith(b"HTTP/1.1 502"), reply[:200]
    wait_until(lambda: re.search(reason, gate.errors()), what="log line: " + reason)


def test_chunk_extensions_are_skipped_and_trailers_dropped(hgate):
    r = requests.get(hgate.url + "/public/chunk-ext", timeout=5)
    assert r.status_code == 200
    assert r.content == b"hello world"
    assert "X-Trailer" not in r.headers


@pytest.mark.parametrize("path,reason", [
    ("bad-chunk", "invalid character in chunk size"),
    ("short-chunk", "upstream .* failed"),
    ("big-head", "response head too large"),
    ("nul-header", "upstream .* failed"),
    ("cr-header", "upstream .* failed"),
    ("interim?n=50", r"too many interim \(1xx\) responses"),
])
def test_malformed_answers_get_502_with_the_reason(hgate, path, reason):
    assert_502_naming(hgate, raw_get(hgate, "/public/" + path), reason)
    assert requests.get(hgate.url + "/public/ok", timeout=5).content == b"ok"  # still serving


def test_a_few_interim_answers_are_skipped(hgate):
    r = requests.get(hgate.url + "/public/interim?n=3", timeout=5)
    assert (r.status_code, r.content) == (200, b"final")


def test_more_than_announced_gives_the_announced_and_drops_the_connection(hgate, hostile):
    r = requests.get(hgate.url + "/public/more", timeout=5)
    assert (r.status_code, r.content) == (200, b"hello")
    wait_until(lambda: "more than its response framing announced" in hgate.errors(),
               what="the extra bytes logged")
    requests.get(hgate.url + "/public/ok", timeout=5)
    conns = [e[0] for e in hostile.seen("/public/")]
    assert conns[-1] != conns[-2]  # the polluted connection was not reused


def test_fewer_than_announced_then_close_is_cut(hgate):
    reply = raw_get(hgate, "/public/fewer")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 100000" in head
    assert 0 < len(body) < 100000  # cut: the client can tell it is not whole
    wait_until(lambda: "truncated" in hgate.errors(), what="the cut logged")


def test_get_on_a_connection_closed_under_it_is_retried_once(hgate, hostile):
    assert requests.get(hgate.url + "/public/race", timeout=5).content == b"first"
    r = requests.get(hgate.url + "/public/race?second", timeout=5)
    assert (r.status_code, r.content) == (200, b"first")
    log = hostile.seen("/public/race?second")
    # Once on the kept-alive connection (closed unanswered), once on a fresh one.
    assert len(log) == 2
    assert log[0][0] != log[1][0] and log[0][1] == 2 and log[1][1] == 1
    assert "sent again on a new one" in hgate.errors()


def test_post_on_a_connection_closed_under_it_is_never_sent_twice(hgate, hostile):
    assert requests.get(hgate.url + "/public/race", timeout=5).content == b"first"
    r = requests.post(hgate.url + "/public/race?post", data=b"pay once", timeout=5)
    assert r.status_code == 502
    time.sleep(0.5 * SLOW)  # a second attempt, if there were one, would have arrived by now
    log = hostile.seen("/public/race?post")
    assert len(log) == 1 and log[0][2] == "POST"


def test_slow_drip_under_the_body_timeout_arrives_whole(hgate):
    # timeout = 2s; a byte every 0.4 s for 4 s in all: never stalled for 2 s.
    r = requests.get(hgate.url + "/public/drip?n=10&gap=0.4", timeout=20)
    assert (r.status_code, r.content) == (200, b"d" * 10)


def test_a_stalled_body_is_cut_after_the_timeout(hgate):
    t0 = time.monotonic()
    reply = raw_get(hgate, "/public/drip?n=3&gap=3")
    assert reply.startswith(b"HTTP/1.1 200")
    assert len(reply.partition(b"\r\n\r\n")[2]) < 3
    assert time.monotonic() - t0 < 6 * SLOW
    wait_until(lambda: "stalled" in hgate.errors(), what="the stall logged")


def test_an_idle_connection_the_upstream_closes_is_dropped_without_a_retry(hgate, hostile):
    assert requests.get(hgate.url + "/public/close-soon", timeout=5).content == b"ok"
    time.sleep(0.5)  # the upstream closed it meanwhile: epoll told the gate
    assert requests.get(hgate.url + "/public/ok", timeout=5).content == b"ok"
    log = hostile.seen("/public/")
    assert log[-1][0] != log[-2][0] and log[-1][1] == 1
    assert "sent again" not in hgate.errors()


def test_keepalive_pool_reuses_then_expires(gate_factory, hostile):
    g = gate_factory([hostile.url], extra={"server": {"workers": "1"},
                                           "upstream": {"keepalive_timeout": "1s"}})
    for _ in range(5):
        assert requests.get(g.url + "/public/ok", timeout=5).content == b"ok"
    assert len({e[0] for e in hostile.seen("/public/ok")}) == 1  # one connection, reused
    time.sleep(1.6)  # past keepalive_timeout (checked every 250 ms)
    assert requests.get(g.url + "/public/ok", timeout=5).content == b"ok"
    assert len({e[0] for e in hostile.seen("/public/ok")}) == 2


def test_a_burst_above_keepalive_keeps_its_connections_for_a_tick_then_trims(gate_factory, hostile):
    # keepalive = 1: three requests at once need three connections; the next
    # burst right after reuses all three (closing the surplus at once made a
    # busy pool connect and close all the time), and once idle for a
    # housekeeping tick (250 ms) the pool is trimmed back to one.
    g = gate_factory([hostile.url], extra={"server": {"workers": "1"},
                                           "upstream": {"keepalive": "1"}})

    def burst(tag):
        replies = [None] * 3

        def get(i):
            replies[i] = requests.get(g.url + "/public/slow?s=0.2&b=%s%d" % (tag, i), timeout=10)
        threads = [threading.Thread(target=get, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.content for r in replies] == [b"slow"] * 3
        return {e[0] for e in hostile.seen("/public/slow?s=0.2&b=" + tag)}

    first = burst("a")
    assert len(first) == 3
    assert burst("b") == first          # all three kept across the burst
    time.sleep(1.0)                     # > 2 housekeeping ticks: trimmed to keepalive
    third = burst("c")
    assert len(third & first) == 1 and len(third) == 3


def test_keepalive_zero_means_a_connection_per_request(gate_factory, hostile):
    g = gate_factory([hostile.url], extra={"server": {"workers": "1"},
                                           "upstream": {"keepalive": "0"}})
    for _ in range(3):
        assert requests.get(g.url + "/public/ok", timeout=5).content == b"ok"
    assert len({e[0] for e in hostile.seen("/public/ok")}) == 3


def test_a_name_that_did_not_resolve_is_502(gate_factory):
    g = gate_factory(["http://no-such-host.invalid:5000"])
    r = requests.get(g.url + "/public/x", timeout=5)
    assert r.status_code == 502
    assert "did not resolve" in g.errors()


@pytest.mark.concurrency
@pytest.mark.slow
def test_a_thousand_slow_requests_do_not_hold_up_fast_ones(gate_factory, hostile):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    g = gate_factory([hostile.url], extra={"upstream": {"timeout": "30s"}})
    n = 1000
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        s.sendall(b"GET /public/slow?s=4 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        socks.append(s)
    wait_until(lambda: len(hostile.seen("/public/slow")) == n, timeout=20 * SLOW,
               what="every slow request upstream")
    worst = 0.0
    for _ in range(20):
        t0 = time.monotonic()
        assert requests.get(g.url + "/public/ok", timeout=5).content == b"ok"
        worst = max(worst, time.monotonic() - t0)
    assert worst < FAST_TARGET_S
    answered = 0
    deadline = time.monotonic() + 30 * SLOW
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        answered += data.startswith(b"HTTP/1.1 200") and data.endswith(b"slow")
        s.close()
    assert answered == n
