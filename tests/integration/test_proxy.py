"""The proxy core (issue 2): forwarding fidelity, streaming, framing, errors,
health, reload, drain and hostile input, against the real binary."""
import base64
import concurrent.futures
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, SLOW, Gate, Upstream, free_port, raw_request, wait_until

PATTERN = bytes(i % 251 for i in range(251 * 261))


def echo(gate, method="GET", path="/echo", **kw):
    r = requests.request(method, gate.url + path, timeout=10, **kw)
    assert r.status_code == 200, r.text
    return r.json()


# ---- fidelity ---------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_reach_upstream_unchanged(gate, method):
    assert echo(gate, method)["method"] == method


def test_head_is_forwarded_with_length_and_no_body(gate):
    r = requests.head(gate.url + "/bytes?n=12345", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "12345"
    assert r.content == b""


def test_raw_target_is_forwarded_byte_for_byte(gate):
    # Encoded '/' or '.' in the path are never public (see the bypass tests);
    # the query is forwarded as sent, escapes and all.
    target = "/echo/a;p/%41b?a=1&a=2&b=%20&c=%zz&d=%2F..%2F"
    reply = raw_request(gate.port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
    body = reply.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["target"] == target


@pytest.mark.parametrize("size", [0, 1, 100 * 1024, 900 * 1024])
def test_bodies_arrive_intact_with_content_length(gate, size):
    data = os.urandom(size)
    doc = echo(gate, "POST", data=data)
    assert doc["body_len"] == size
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [1, 300 * 1024])
def test_chunked_bodies_arrive_intact(gate, size):
    data = os.urandom(size)
    pieces = [data[: size // 2], data[size // 2:]]
    doc = echo(gate, "PUT", data=iter([p for p in pieces if p]))  # an empty piece would end the body
    assert doc["body_len"] == size
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_repeated_headers_and_host_pass_in_order(gate):
    req = (b"GET /echo HTTP/1.1\r\nHost: app.example\r\nX-Dup: one\r\nX-Dup: two\r\n"
           b"Accept: text/plain\r\nConnection: close\r\n\r\n")
    doc = json.loads(raw_request(gate.port, req).split(b"\r\n\r\n", 1)[1])
    headers = doc["headers"]
    assert [v for k, v in headers if k == "X-Dup"] == ["one", "two"]
    assert dict(headers)["Host"] == "app.example"
    assert dict(headers)["X-Forwarded-Host"] == "app.example"


def test_upstream_connections_are_reused(gate):
    with requests.Session() as s:
        ports = {s.get(gate.url + "/echo", timeout=5).json()["peer_port"] for _ in range(50)}
    assert len(ports) <= 4  # at most a couple per worker, not one per request


@pytest.mark.parametrize("method", ["CONNECT", "TRACE"])
def test_connect_and_trace_are_refused(gate, method):
    reply = raw_request(gate.port, ("%s /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % method).encode())
    assert reply.startswith(b"HTTP/1.1 405")


# ---- body limits and framing ---------------------------------------------------

def test_body_over_max_body_gets_413_before_it_is_sent(gate):
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


# ---- streaming -----------------------------------------------------------------

def stream_and_measure(gate, path, expected):
    base = gate.rss_kib()
    peak = base
    digest = hashlib.sha256()
    got = 0
    with requests.get(gate.url + path, stream=True, timeout=60) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(256 * 1024):
            digest.update(chunk)
            got += len(chunk)
            if got % (16 * 1024 * 1024) < 256 * 1024:
                peak = max(peak, gate.rss_kib())
    assert got == expected
    return peak - base, digest.hexdigest()


def expected_digest(n):
    d = hashlib.sha256()
    full, rest = divmod(n, len(PATTERN))
    for _ in range(full):
        d.update(PATTERN)
    d.update(PATTERN[:rest])
    return d.hexdigest()


@pytest.mark.perf
@pytest.mark.parametrize("chunked", [False, True])
def test_200_mib_streams_in_bounded_memory(gate, chunked):
    n = 200 * 1024 * 1024
    growth_kib, digest = stream_and_measure(gate, "/bytes?n=%d%s" % (n, "&chunked=1" if chunked else ""), n)
    assert digest == expected_digest(n)
    assert growth_kib < 32 * 1024, "RSS grew by %d KiB" % growth_kib


def test_upstream_dying_mid_body_is_a_truncated_response(gate):
    reply = raw_request(gate.port, b"GET /die?after=1000 HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0]
    assert len(body) < 1000000  # never a clean, complete-looking end


def test_chunked_upstream_response_arrives_complete(gate):
    r = requests.get(gate.url + "/bytes?n=300000&chunked=1", timeout=10)
    assert len(r.content) == 300000
    assert hashlib.sha256(r.content).hexdigest() == expected_digest(300000)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(gate, status):
    reply = raw_request(gate.port, ("GET /status/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % status).encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status)
    assert b"transfer-encoding" not in head.lower()
    assert body == b""


# ---- headers -------------------------------------------------------------------------

def test_hop_by_hop_headers_do_not_cross(gate):
    req = (b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: X-Foo, close\r\nX-Foo: 1\r\nKeep-Alive: 5\r\n"
           b"TE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic eA==\r\n\r\n")
    doc = json.loads(raw_request(gate.port, req).split(b"\r\n\r\n", 1)[1])
    names = {k.lower() for k, _ in doc["headers"]}
    assert not names & {"x-foo", "keep-alive", "te", "upgrade", "proxy-authorization"}


def test_response_hop_by_hop_dropped_and_set_cookies_kept(gate):
    r = requests.get(gate.url + "/cookies", timeout=5)
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2; Path=/", "c=3; HttpOnly"]
    assert "X-Hop" not in r.headers and "Keep-Alive" not in r.headers


def test_x_forwarded_for_trusts_only_the_configured_hops(gate, upstream):
    doc = echo(gate, headers={"X-Forwarded-For": "1.1.1.1, 2.2.2.2", "X-Forwarded-Proto": "https",
                              "X-Request-Id": "xff-test"})
    h = dict(doc["headers"])
    assert h["X-Forwarded-For"] == "2.2.2.2, 127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"
    # The line is written when the request ends, just after the client has its answer.
    wait_until(lambda: any(l["request_id"] == "xff-test" for l in gate.access_log()), what="access log")
    line = [l for l in gate.access_log() if l["request_id"] == "xff-test"][0]
    assert line["client_ip"] == "2.2.2.2"


def test_no_x_forwarded_for_means_the_peer(gate):
    assert dict(echo(gate)["headers"])["X-Forwarded-For"] == "127.0.0.1"


@pytest.mark.parametrize("name", ["X-Forwarded-Email", "x-forwarded-email", "X_Forwarded_Email",
                                  "X-FORWARDED-REMOTE-USER", "x-forwarded-groups", "X_Forwarded_Groups"])
def test_identity_headers_are_never_taken_from_clients(gate, name):
    req = ("GET /echo HTTP/1.1\r\nHost: x\r\n%s: admin@example.com\r\n%s: dup\r\nConnection: close\r\n\r\n"
           % (name, name)).encode()
    doc = json.loads(raw_request(gate.port, req).split(b"\r\n\r\n", 1)[1])
    folded = {k.lower().replace("_", "-") for k, _ in doc["headers"]}
    assert not folded & {"x-forwarded-email", "x-forwarded-remote-user", "x-forwarded-groups"}


def test_folded_lines_cannot_forge_an_identity_header(gate):
    # "X-Forwarded-Emai: evil" + folded "l" is unfolded by libmicrohttpd 0.9.75
    # into "X-Forwarded-Email": the identity filter sees the final name.
    req = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-Emai: evil@x\r\n l\r\nConnection: close\r\n\r\n"
    reply = raw_request(gate.port, req)
    if reply.startswith(b"HTTP/1.1 200"):
        doc = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert "evil@x" not in json.dumps(doc["headers"])


def test_headers_with_underscores_are_dropped(gate):
    doc = echo(gate, headers={"X_Custom": "1", "X-Custom": "2"})
    assert [v for k, v in doc["headers"] if k.lower().replace("_", "-") == "x-custom"] == ["2"]


def test_own_cookies_never_reach_the_upstream(gate):
    doc = echo(gate, headers={"Cookie": "ssogate=abc; other=1; ssogate_state=x"})
    assert [v for k, v in doc["headers"] if k == "Cookie"] == ["other=1"]


def test_upstream_cannot_set_ssogate_cookies(gate):
    r = requests.get(gate.url + "/setcookie?name=ssogate", timeout=5)
    assert r.raw.headers.getlist("Set-Cookie") == ["app=ok; Path=/"]


def test_request_id_passes_through_or_is_made(gate):
    doc = echo(gate, headers={"X-Request-Id": "abc-123"})
    assert dict(doc["headers"])["X-Request-Id"] == "abc-123"
    doc = echo(gate, headers={"X-Request-Id": "a b\"" + "x" * 200})
    made = dict(doc["headers"])["X-Request-Id"]
    assert len(made) == 32 and all(c in "0123456789abcdef" for c in made)
    wait_until(lambda: any(l["request_id"] == "abc-123" for l in gate.access_log()), what="access log")


def test_access_log_line_has_every_field_and_no_query(gate):
    requests.get(gate.url + "/echo?token=secret", headers={"X-Request-Id": "log-1"}, timeout=5)
    wait_until(lambda: any(l["request_id"] == "log-1" for l in gate.access_log()), what="access log")
    line = [l for l in gate.access_log() if l["request_id"] == "log-1"][0]
    for field in ("time", "client_ip", "method", "path", "status", "bytes", "duration_ms", "upstream_ms", "user"):
        assert field in line
    assert line["path"] == "/echo" and line["status"] == 200 and line["bytes"] > 0
    assert "secret" not in json.dumps(line)


# ---- errors ---------------------------------------------------------------------------

def test_upstream_down_is_502_with_request_id(gate_factory):
    g = gate_factory(["http://127.0.0.1:%d" % free_port()])
    r = requests.get(g.url + "/echo", timeout=10)
    assert r.status_code == 502
    assert r.headers["X-Request-Id"] in r.text
    assert "upstream" in g.errors()
    m = g.metrics()
    assert m['ssogate_upstream_errors_total{kind="connect"}'] >= 1


def test_slow_upstream_is_504(gate_factory, upstream):
    g = gate_factory([upstream.url], extra={"upstream": {"timeout": "1s"}})
    t0 = time.monotonic()
    r = requests.get(g.url + "/slow?s=5", timeout=10)
    assert r.status_code == 504
    assert time.monotonic() - t0 < 3 * SLOW


def test_long_query_within_timeout_comes_back(gate_factory, upstream):
    g = gate_factory([upstream.url], extra={"upstream": {"timeout": "5s"}})
    assert requests.get(g.url + "/slow?s=2", timeout=10).status_code == 200


def test_requests_are_spread_over_upstreams_and_a_dead_one_is_skipped(tmp_path, gate_factory):
    a, b = Upstream(str(tmp_path), "a"), Upstream(str(tmp_path), "b")
    try:
        g = gate_factory([a.url, b.url])
        ports = [echo(g)["peer_port"] for _ in range(40)]
        assert len(a.requests_seen()) >= 8 and len(b.requests_seen()) >= 8
        b.stop()
        codes = [requests.get(g.url + "/echo", timeout=10).status_code for _ in range(30)]
        assert codes.count(502) <= 3 and codes[-10:] == [200] * 10
        assert ports
    finally:
        a.stop()
        b.stop()


# ---- health ----------------------------------------------------------------------------

def test_healthz_stays_200_and_readyz_names_the_upstream(gate_factory):
    g = gate_factory(["http://127.0.0.1:%d" % free_port()])
    assert requests.get(g.url + "/healthz", timeout=5).status_code == 200
    r = requests.get(g.url + "/readyz", timeout=5)
    assert r.status_code == 503
    assert "checks" in r.json() and r.json()["checks"]["upstream"] != "ok"


@pytest.mark.parametrize("target", ["/healthz", "/healthz?probe=1", "/healthz#x"])
def test_healthz_is_healthz_whatever_follows_the_path(gate, target):
    reply = raw_request(gate.port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"\r\n\r\nok\n"), reply


def test_healthz_is_not_logged_at_info(gate):
    for _ in range(3):
        requests.get(gate.url + "/healthz", timeout=5)
    requests.get(gate.url + "/echo", headers={"X-Request-Id": "after-health"}, timeout=5)
    wait_until(lambda: any(l["request_id"] == "after-health" for l in gate.access_log()), what="log")
    assert not any(l["path"] == "/healthz" for l in gate.access_log())


# ---- the gate before sign-in -----------------------------------------------------------------

def test_browser_navigation_is_sent_to_login(gate):
    r = requests.get(gate.url + "/queries/1?x=1", headers={"Accept": "text/html"}, allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "/ssogate/login?return_to=/queries/1%3Fx%3D1"


@pytest.mark.parametrize("kw", [{"headers": {"Accept": "application/json"}},
                                {"headers": {"X-Requested-With": "XMLHttpRequest"}},
                                {"method": "POST"}])
def test_api_calls_get_401_json(gate, kw):
    method = kw.pop("method", "GET")
    r = requests.request(method, gate.url + "/api/queries", allow_redirects=False, timeout=5, **kw)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"


@pytest.mark.parametrize("path", ["/public/../secret", "/public%2f..%2fsecret", "/public/%2e%2e/secret",
                                  "/publicity", "/public\\..\\secret"])
def test_public_path_bypass_attempts_are_not_forwarded(gate, upstream, path):
    reply = raw_request(gate.port, ("GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n" % path).encode())
    assert reply.split(b"\r\n")[0] in (b"HTTP/1.1 302 Found", b"HTTP/1.1 400 Bad Request")
    assert not any(path in r["target"] for r in upstream.requests_seen())


# ---- metrics ----------------------------------------------------------------------------------

def test_metrics_count_requests_exactly(gate):
    key = 'ssogate_requests_total{route="public",class="2xx"}'
    before = gate.metrics().get(key, 0)
    for _ in range(7):
        requests.get(gate.url + "/ping", timeout=5)
    time.sleep(0.2)
    assert gate.metrics()[key] == before + 7
    assert gate.metrics()["ssogate_config_generation"] == 1


# ---- listening: one socket per worker ------------------------------------------------------------

def worker_connections(gate):
    m = gate.metrics()
    return [m['ssogate_worker_connections{worker="%d"}' % i] for i in range(2)]


def test_a_burst_of_connections_is_spread_over_the_workers(gate_factory, upstream):
    """128 connections opened at once, as wrk does: with one shared listening
    socket the worker that woke first took nearly all of them (seen: 0/128,
    4/124, 122/6) and stayed the hot core; each worker's own SO_REUSEPORT
    socket gets its share by the kernel's hash of the addresses."""
    g = gate_factory([upstream.url], extra={"server": {"workers": "2"}})
    socks = []
    try:
        for _ in range(128):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", g.port))
            socks.append(s)
        wait_until(lambda: sum(worker_connections(g)) == 128, what="128 connections accepted")
        counts = worker_connections(g)
        assert g.metrics()["ssogate_open_connections"] == 128
        # Binomial(128, 1/2): below 40 on either side once in 10^5 runs.
        assert min(counts) >= 40, counts
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: sum(worker_connections(g)) == 0, what="connections closed")


def start_expecting_failure(tmp_path, settings, timeout=10):
    """Starts ssogate on an INI file of these settings; it must not stay up."""
    ini = os.path.join(str(tmp_path), "refused.ini")
    with open(ini, "w") as f:
        for section, values in settings.items():
            f.write("[%s]\n" % section + "".join("%s = %s\n" % kv for kv in values.items()))
    r = subprocess.run([BIN, "-c", ini], capture_output=True, text=True,
                       timeout=timeout * SLOW, cwd=str(tmp_path))
    return r.returncode, r.stderr


def test_a_port_already_in_use_is_refused_even_by_another_gate(gate, tmp_path):
    """SO_REUSEPORT would let a second ssogate (same user) share the port and
    silently take half the connections: the first bind of each start is
    made without it, so the second start fails as with one socket."""
    settings = dict(gate.settings, metrics={"listen": "127.0.0.1:%d" % free_port()})
    code, err = start_expecting_failure(tmp_path, settings)
    assert code == 1, err
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % gate.port in err
    assert requests.get(gate.url + "/ping", timeout=5).status_code == 200


def test_a_port_held_by_another_program_is_refused(tmp_path, upstream):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        code, err = start_expecting_failure(tmp_path, {
            "server": {"listen": "127.0.0.1:%d" % port, "public_url": "http://x"},
            "upstream": {"url": upstream.url},
            "session": {"secret": base64.b64encode(os.urandom(32)).decode()},
            "access": {"allowed_domains": "example.com"}, "headers": {"jwt": ""}})
    assert code == 1, err
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % port in err


# ---- reload and shutdown -------------------------------------------------------------------------

def test_sighup_switches_upstream_and_bad_file_keeps_the_old(tmp_path, gate_factory, upstream):
    other = Upstream(str(tmp_path), "other")
    try:
        g = gate_factory([upstream.url])
        g.settings["upstream"]["url"] = other.url
        g.reload()
        wait_until(lambda: g.metrics()["ssogate_config_generation"] == 2, what="reload")
        echo(g)
        assert other.requests_seen()
        with open(g.ini) as f:
            good = f.read()
        g.reload(good + "\n[server]\nlisten_typo = 1\n")
        wait_until(lambda: g.metrics()['ssogate_reloads_total{result="failed"}'] == 1, what="failed reload")
        assert "reload failed" in g.errors()
        assert g.metrics()["ssogate_config_generation"] == 2
        echo(g)
    finally:
        other.stop()


@pytest.mark.concurrency
def test_no_request_fails_across_twenty_reloads(gate):
    failures, done = [], threading.Event()

    def hammer():
        with requests.Session() as s:
            while not done.is_set():
                try:
                    if s.get(gate.url + "/echo", timeout=10).status_code != 200:
                        failures.append("status")
                except requests.RequestException as e:
                    failures.append(str(e))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    slow = concurrent.futures.ThreadPoolExecutor(1).submit(requests.get, gate.url + "/slow?s=2", timeout=20)
    for _ in range(20):
        gate.reload()
        time.sleep(0.2)
    done.set()
    for t in threads:
        t.join()
    assert slow.result().status_code == 200
    assert failures == []
    wait_until(lambda: gate.metrics()['ssogate_reloads_total{result="ok"}'] == 20, what="20 reloads")


@pytest.mark.concurrency
def test_sigterm_drains_in_flight_requests(gate):
    pool = concurrent.futures.ThreadPoolExecutor(3)
    futures = [pool.submit(requests.get, gate.url + "/slow?s=2", timeout=20) for _ in range(3)]
    time.sleep(0.5)
    t0 = time.monotonic()
    gate.proc.p.send_signal(signal.SIGTERM)
    assert [f.result().status_code for f in futures] == [200, 200, 200]
    assert gate.proc.p.wait(10 * SLOW) == 0
    assert time.monotonic() - t0 < 5 * SLOW


@pytest.mark.concurrency
def test_sigterm_gives_up_after_drain_timeout(gate_factory, upstream):
    g = gate_factory([upstream.url], extra={"server": {"drain_timeout": "1s"}})
    pool = concurrent.futures.ThreadPoolExecutor(1)
    f = pool.submit(requests.get, g.url + "/slow?s=8", timeout=20)
    time.sleep(0.5)
    t0 = time.monotonic()
    g.proc.p.send_signal(signal.SIGTERM)
    assert g.proc.p.wait(10 * SLOW) == 0
    assert time.monotonic() - t0 < 3.5 * SLOW
    assert f.result().status_code == 503


# ---- slow and hostile clients ----------------------------------------------------------------------

@pytest.mark.slow
def test_slow_requests_do_not_hold_up_fast_ones(gate_factory, upstream):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    g = gate_factory([upstream.url])
    n = 300
    pool = concurrent.futures.ThreadPoolExecutor(n)
    slow = [pool.submit(requests.get, g.url + "/slow?s=3", timeout=30) for _ in range(n)]
    time.sleep(1)
    worst = 0.0
    for _ in range(20):
        t0 = time.monotonic()
        assert requests.get(g.url + "/ping", timeout=5).status_code == 200
        worst = max(worst, time.monotonic() - t0)
    assert worst < 0.5 * SLOW
    assert all(f.result().status_code == 200 for f in slow)


# Framing, smuggling and oversized heads: tests/integration/test_hostile.py.
@pytest.mark.parametrize("data", [b"GARBAGE\r\n\r\n", b"GET /echo HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"],
                         ids=["garbage", "no-colon"])
def test_malformed_requests_get_4xx_or_close(gate, upstream, data):
    reply = raw_request(gate.port, data, timeout=3)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    assert not any(r["target"].startswith("/echo") for r in upstream.requests_seen())
    assert requests.get(gate.url + "/healthz", timeout=5).status_code == 200
