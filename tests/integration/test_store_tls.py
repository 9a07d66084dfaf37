"""rediss:// (issue 13): the store over TLS, against Debian's redis-server 7.0
started with --tls-port (its own TLS, built with OpenSSL) and a test CA made
with the openssl command at test time.  Mirrors test_store.py (two gates, one
store; Redis down and back) and adds what TLS and AUTH tokens can get wrong:
a wrong CA, an expired certificate, another host's certificate, a server that
never finishes the handshake, a wrong token.  The AUTH forms follow Redis's
documentation of AUTH (one argument: the default user's password, as
ElastiCache's AUTH token; two: a Redis 6 ACL user and password)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, SLOW, Idp, Proc, free_port, login, two_gates_sharing_a_store, wait_until
from test_saml import post_acs, start_login

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

CA_CNF = """[ca]
default_ca = test
[test]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = any
copy_extensions = copy
[any]
commonName = supplied
"""


def run(*args):
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60)


class Pki:
    """A test CA, an unrelated CA, and server certificates signed by the CA."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pki")
        os.makedirs(self.dir)
        self.ca = self.make_ca("ca")
        self.other_ca = self.make_ca("other-ca")
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "ca.cnf"), "w") as f:
            f.write(CA_CNF.format(d=self.dir))

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.path(name + ".key"), "-out", self.path(name + ".pem"), "-days", "30",
            "-subj", "/CN=ssogate test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(name + ".pem")

    def server(self, name, san="DNS:localhost,IP:127.0.0.1", start=None, end=None):
        """(cert, key) for a Redis server; start/end (YYMMDDHHMMSSZ) backdate it."""
        key, csr, cert = self.path(name + ".key"), self.path(name + ".csr"), self.path(name + ".pem")
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san,
            "-addext", "extendedKeyUsage=serverAuth")
        dates = ["-startdate", start, "-enddate", end] if start else ["-days", "30"]
        run("ca", "-batch", "-config", self.path("ca.cnf"), "-cert", self.ca, "-keyfile",
            self.path("ca.key"), "-in", csr, "-out", cert, "-notext", *dates)
        return cert, key


class TlsRedis:
    """redis-server with TLS only (--port 0): plain TCP is not served."""

    def __init__(self, tmp, pki, cert, extra=(), port=None):
        self.tmp, self.pki, self.cert = tmp, pki, cert
        self.port = port or free_port()
        self.extra = list(extra)
        self.start()

    def start(self):
        cert, key = self.cert
        self.proc = Proc([REDIS, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                          "--tls-cert-file", cert, "--tls-key-file", key,
                          "--tls-ca-cert-file", self.pki.ca, "--tls-auth-clients", "no",
                          "--save", "", "--appendonly", "no", "--dir", self.tmp, *self.extra],
                         self.tmp, "redis-%d" % time.monotonic_ns())

        def up():  # the TLS port answers (without verification: some certs here are bad on purpose)
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64)[:1] in (b"+", b"-")

        wait_until(up, what="redis over TLS")

    def url(self, host="localhost", auth=""):
        return "rediss://%s%s:%d/0" % (auth + "@" if auth else "", host, self.port)

    def stop(self):
        self.proc.stop()


@pytest.fixture
def pki(tmp_path):
    return Pki(str(tmp_path))


def gate_with_store(tmp_path, gate_factory, upstream, store, name="ssogate", port=None, idp=None,
                    public=None, more=None):
    port = port or free_port()
    public = public or "http://127.0.0.1:%d" % port
    idp = idp or Idp(str(tmp_path), public)
    extra = {"store": store, "server": {"public_url": public}}
    for section, values in (more or {}).items():
        extra.setdefault(section, {}).update(values)
    return gate_factory([upstream.url], idp=idp, port=port, name=name, extra=extra), idp


def store_check(gate):
    return requests.get(gate.url + "/readyz", timeout=5).json()["checks"]["store"]


def login_code(gate):
    return requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=10).status_code


def refused_with(gate, reason):
    """Sign-in fails closed (503), readyz and the log name the reason."""
    assert login_code(gate) == 503
    wait_until(lambda: reason in store_check(gate), timeout=10, what="readyz: " + reason)
    r = requests.get(gate.url + "/readyz", timeout=5)
    assert r.status_code == 503
    wait_until(lambda: "store not ready: " + reason in gate.errors(), timeout=10, what="log line")
    assert "login refused: store unavailable" in gate.errors()


# ---- works ------------------------------------------------------------------------------------------

@pytest.fixture
def two_gates(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"))
    yield from two_gates_sharing_a_store(tmp_path, gate_factory, upstream, redis,
                                         {"url": redis.url(), "tls_ca_file": pki.ca})


@pytest.mark.concurrency
def test_two_gates_share_a_rediss_store(two_gates):
    a, b, idp, _ = two_gates
    wait_until(lambda: store_check(a) == "ok" and store_check(b) == "ok", what="both stores ready")
    with requests.Session() as c:
        rid, _ = start_login(a, c)
        state = c.cookies.get("ssogate_state")
        saml = idp.response(in_response_to=rid)
        assert post_acs(a, c, saml).status_code == 303
        c.cookies.set("ssogate_state", state, path="/ssogate/")
        assert post_acs(b, c, saml).status_code == 403  # the replay id went through rediss://
    assert b.metrics()['ssogate_logins_failed_total{reason="replay"}'] == 1


@pytest.mark.concurrency
def test_logout_on_a_reaches_b_over_tls(two_gates):
    a, b, _, _ = two_gates
    with requests.Session() as c:
        assert login(a, c).status_code == 303
        cookie = c.cookies.get("ssogate")
        assert requests.get(b.url + "/ssogate/session", cookies={"ssogate": cookie}, timeout=5).status_code == 200
        c.get(a.url + "/ssogate/logout", allow_redirects=False)
    wait_until(lambda: requests.get(b.url + "/ssogate/session", cookies={"ssogate": cookie},
                                    timeout=5).status_code == 401, timeout=5, what="revocation on b")


@pytest.mark.concurrency
def test_rediss_down_fails_logins_closed_and_keeps_sessions(two_gates):
    a, _, _, redis = two_gates
    with requests.Session() as c:
        assert login(a, c).status_code == 303
        redis.stop()
        assert login_code(a) == 503
        assert c.get(a.url + "/private/echo", timeout=5).status_code == 200  # existing session
        wait_until(lambda: "connect localhost:%d" % redis.port in store_check(a), timeout=10,
                   what="readyz names the connect failure")
        redis.start()
        wait_until(lambda: login_code(a) == 302, timeout=10, what="login heals")
        wait_until(lambda: requests.get(a.url + "/readyz", timeout=5).status_code == 200, timeout=12,
                   what="ready again")
    with requests.Session() as fresh:
        assert login(a, fresh).status_code == 303  # the replay cache works again


@pytest.mark.concurrency
def test_parallel_logins_share_the_tls_pool(tmp_path, gate_factory, upstream, pki):
    # More logins at once than the pool holds (8): TLS connections are made on
    # several worker threads through one context and its session cache.
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"))
    g, idp = gate_with_store(tmp_path, gate_factory, upstream, {"url": redis.url(), "tls_ca_file": pki.ca},
                             more={"ratelimit": {"login": "1000/s", "burst": "1000"},
                                   "server": {"workers": "4"}})
    results = []

    def one(i):
        with requests.Session() as c:
            results.append(login(g, c, "user%d@example.com" % i).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [303] * 24
    assert store_check(g) == "ok"
    idp.stop()
    redis.stop()


def test_check_shows_the_ca_file(two_gates, pki):
    a, _, _, _ = two_gates
    out = subprocess.run([BIN, "--check", "-c", a.ini], capture_output=True, timeout=30).stdout.decode()
    assert "rediss://localhost:" in out
    assert pki.ca in out


# ---- refused ----------------------------------------------------------------------------------------

def test_wrong_ca_is_refused_with_a_clear_reason(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"))
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(), "tls_ca_file": pki.other_ca})
    # redis-server sends its chain up to the CA, which the other CA does not know.
    refused_with(g, "TLS: certificate verify failed: self-signed certificate in certificate chain")
    idp.stop()
    redis.stop()


def test_system_cas_refuse_a_private_ca(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"))
    g, idp = gate_with_store(tmp_path, gate_factory, upstream, {"url": redis.url()})
    refused_with(g, "TLS: certificate verify failed: self-signed certificate in certificate chain")
    idp.stop()
    redis.stop()


def test_expired_server_certificate_is_refused(tmp_path, gate_factory, upstream, pki):
    cert = pki.server("expired", start="200101000000Z", end="200201000000Z")
    redis = TlsRedis(str(tmp_path), pki, cert)
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(), "tls_ca_file": pki.ca})
    refused_with(g, "TLS: certificate verify failed: certificate has expired")
    idp.stop()
    redis.stop()


@pytest.mark.parametrize("host,reason", [("localhost", "hostname mismatch"),
                                         ("127.0.0.1", "IP address mismatch")])
def test_another_hosts_certificate_is_refused(tmp_path, gate_factory, upstream, pki, host, reason):
    redis = TlsRedis(str(tmp_path), pki, pki.server("elsewhere", san="DNS:redis.elsewhere.test"))
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(host=host), "tls_ca_file": pki.ca})
    refused_with(g, "TLS: certificate verify failed: " + reason)
    idp.stop()
    redis.stop()


def test_rediss_to_a_plain_redis_is_refused(tmp_path, gate_factory, upstream, pki):
    port = free_port()
    plain = Proc([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                 str(tmp_path), "plain-redis")
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close() is None,
               what="redis")
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": "rediss://localhost:%d" % port, "tls_ca_file": pki.ca})
    assert login_code(g) == 503
    wait_until(lambda: store_check(g).startswith("TLS: "), timeout=10, what="a TLS reason")
    idp.stop()
    plain.stop()


def test_a_silent_server_times_out_the_handshake(tmp_path, gate_factory, upstream, pki):
    # Accepts TCP (the kernel's backlog) and never says a word: the handshake is bounded.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                                 {"url": "rediss://localhost:%d" % port, "tls_ca_file": pki.ca})
        t0 = time.monotonic()
        assert login_code(g) == 503
        assert time.monotonic() - t0 < 3 * SLOW
        wait_until(lambda: "TLS: handshake timed out" in store_check(g), timeout=10,
                   what="readyz: handshake timed out")
        idp.stop()


def test_missing_ca_file_stops_the_start(tmp_path, pki):
    ini = tmp_path / "bad.ini"
    port = free_port()
    ini.write_text("[server]\nlisten = 127.0.0.1:%d\npublic_url = http://127.0.0.1:%d\n"
                   "[upstream]\nurl = http://127.0.0.1:9\n[access]\nallowed_domains = example.com\n"
                   "[session]\nsecret = %s\n[store]\nurl = rediss://localhost:6390\n"
                   "tls_ca_file = %s/nope.pem\n" % (port, port, __import__("conftest").secret(), tmp_path))
    p = subprocess.run([BIN, "-c", str(ini)], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"[store] TLS: CA file %s/nope.pem" % str(tmp_path).encode() in p.stderr


def test_ca_file_without_rediss_is_a_config_error(tmp_path, pki):
    ini = tmp_path / "bad.ini"
    ini.write_text("[upstream]\nurl = http://127.0.0.1:9\n[session]\nsecret = %s\n[store]\n"
                   "url = redis://localhost:6390\ntls_ca_file = %s\n" % (__import__("conftest").secret(), pki.ca))
    p = subprocess.run([BIN, "--check", "-c", str(ini)], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"tls_ca_file" in p.stderr and b"only used with a rediss:// url" in p.stderr


# ---- AUTH tokens (ElastiCache) and ACL users ----------------------------------------------------------

TOKEN = "Elasti/Cache+t0ken@with-odd=chars!&#$^<>"  # ElastiCache allows !&#$^<>-


def never_logged(gate, *extra_outputs):
    gate.stop(signal.SIGTERM)
    text = b""
    for path in (gate.proc.out_path, gate.proc.err_path):
        with open(path, "rb") as f:
            text += f.read()
    text += b"".join(extra_outputs)
    for part in (TOKEN, "t0ken", "Elasti/Cache"):
        assert part.encode() not in text, part


def test_auth_token_works_and_is_never_logged(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"), extra=["--requirepass", TOKEN])
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(auth=":" + TOKEN), "tls_ca_file": pki.ca})
    with requests.Session() as c:
        assert login(g, c).status_code == 303
    wait_until(lambda: store_check(g) == "ok", what="store ready")
    check = subprocess.run([BIN, "--check", "-c", g.ini], capture_output=True, timeout=30)
    assert b"rediss://:***@localhost" in check.stdout
    never_logged(g, check.stdout, check.stderr)
    idp.stop()
    redis.stop()


def test_wrong_auth_token_is_refused_clearly(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"), extra=["--requirepass", "the-right-one"])
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(auth=":" + TOKEN), "tls_ca_file": pki.ca})
    refused_with(g, "AUTH refused: wrong password or user (WRONGPASS)")
    never_logged(g)
    idp.stop()
    redis.stop()


def test_missing_auth_token_is_named(tmp_path, gate_factory, upstream, pki):
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"), extra=["--requirepass", TOKEN])
    g, idp = gate_with_store(tmp_path, gate_factory, upstream, {"url": redis.url(), "tls_ca_file": pki.ca})
    refused_with(g, "redis refused PING (NOAUTH)")
    idp.stop()
    redis.stop()


def test_acl_user_and_password(tmp_path, gate_factory, upstream, pki):
    # Redis 6 ACL: the default user is off; "gate" may touch ssogate:* keys only.
    acl = ["--user", "default", "off", "--user", "gate", "on", ">" + TOKEN, "~ssogate:*", "+@all"]
    redis = TlsRedis(str(tmp_path), pki, pki.server("redis"), extra=acl)
    g, idp = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(auth="gate:" + TOKEN), "tls_ca_file": pki.ca})
    with requests.Session() as c:
        assert login(g, c).status_code == 303
    bad, _ = gate_with_store(tmp_path, gate_factory, upstream,
                             {"url": redis.url(auth="intruder:" + TOKEN), "tls_ca_file": pki.ca},
                             name="bad", idp=idp)
    refused_with(bad, "AUTH refused: wrong password or user (WRONGPASS)")
    never_logged(g)
    idp.stop()
    redis.stop()
