"""Fixtures that start the real ssogate binary next to a real upstream, a real
test IdP (lxml + xmlsec, not lasso) and, where needed, a real redis-server.

Every process is started on loopback ports picked free, with its output in the
test's tmp_path, and is killed at teardown.  TEST_SSOGATE_BIN picks the binary
(default build/ssogate); TEST_SSOGATE_SANITIZED=1 marks a sanitizer build (slower).
"""
import base64
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import saml_fixtures as fx  # noqa: E402

PY = "/usr/bin/python3"
BIN = os.environ.get("TEST_SSOGATE_BIN", os.path.join(ROOT, "build", "ssogate"))
SANITIZED = os.environ.get("TEST_SSOGATE_SANITIZED") == "1"
SLOW = 4 if SANITIZED else 1  # time allowance factor


def _ports_outside_the_ephemeral_range():
    """Ports the kernel never hands to an outgoing connection.  A port from
    the ephemeral range, found free and released, can be taken by any client
    socket before the server under test binds it (seen: "Address already in
    use" once in a full run)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    ports = list(range(10000, low)) if low > 12000 else list(range(high + 1, 65536))
    start = os.getpid() * 7919 % len(ports)  # two runs at once start apart
    return ports[start:] + ports[:start]


_candidate_ports = iter(_ports_outside_the_ephemeral_range())


def free_port():
    """A loopback port nobody listens on, never handed out twice in a run."""
    for port in _candidate_ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port left outside the ephemeral range")


def wait_until(check, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def raw_request(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection; returns everything until the
    server closes, resets or goes quiet for timeout seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        chunks = []
        try:
            s.sendall(data)
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass
        return b"".join(chunks)


class Proc:
    """A child process with its output in files; killed at teardown even when
    the fixture that started it failed."""

    live = []

    def __init__(self, args, tmp, name, env=None):
        self.out_path = os.path.join(tmp, name + ".out")
        self.err_path = os.path.join(tmp, name + ".err")
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.p = subprocess.Popen(args, stdout=self.out, stderr=self.err, env=env, cwd=tmp)
        Proc.live.append(self)

    def stop(self, sig=signal.SIGKILL, timeout=10):
        if self in Proc.live:
            Proc.live.remove(self)
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.out.close()
        self.err.close()
        return self.p.returncode


class Upstream:
    def __init__(self, tmp, name="upstream", host="127.0.0.1", port=None):
        self.port = port or free_port()
        self.url = "http://%s:%d" % (host, self.port)
        self.record = os.path.join(tmp, name + ".jsonl")
        self.proc = Proc([PY, os.path.join(ROOT, "tests/upstream/app.py"),
                          "--listen", "%s:%d" % (host, self.port), "--record", self.record], tmp, name)
        wait_until(lambda: requests.get(self.url + "/ping", timeout=1).ok, what="upstream")

    def requests_seen(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        self.proc.stop()


class Idp:
    """Keys, metadata and a running test IdP server."""

    def __init__(self, tmp, sp_public_url, sign="assertion", extra_args=(), acs_path="/ssogate/acs"):
        self.tmp = tmp
        self.port = free_port()
        self.base = "http://localhost:%d" % self.port
        self.entity_id = self.base + "/metadata"
        self.sp_entity_id = sp_public_url + "/ssogate/metadata"
        self.acs = sp_public_url + acs_path
        self.key, self.cert = fx.make_keypair("test idp")
        self.key_path = os.path.join(tmp, "idp.key")
        self.cert_path = os.path.join(tmp, "idp.crt")
        for path, data in ((self.key_path, self.key), (self.cert_path, self.cert)):
            with open(path, "wb") as f:
                f.write(data)
        os.chmod(self.key_path, 0o600)
        self.metadata_path = os.path.join(tmp, "idp-metadata.xml")
        self.proc = Proc([PY, os.path.join(ROOT, "tests/idp/server.py"), "--listen",
                          "127.0.0.1:%d" % self.port, "--base-url", self.base,
                          "--entity-id", self.entity_id, "--sp-entity-id", self.sp_entity_id,
                          "--sp-acs", self.acs, "--key", self.key_path, "--cert", self.cert_path,
                          "--sign", sign, "--groups-attribute", "groups",
                          "--metadata-out", self.metadata_path] + list(extra_args), tmp, "idp")
        wait_until(lambda: os.path.exists(self.metadata_path), what="idp metadata")

    def response(self, sign="assertion", in_response_to=None, name_id="alice@example.com", **kw):
        """A signed SAMLResponse (base64) with this IdP's key, for hand-made cases."""
        kw.setdefault("audience", self.sp_entity_id)
        kw.setdefault("destination", self.acs)
        kw.setdefault("recipient", self.acs)
        kw.setdefault("issuer", self.entity_id)
        kw.setdefault("attributes", {"displayName": ["Alice"], "groups": ["eng"]})
        rsp = fx.build_tree(in_response_to=in_response_to, name_id=name_id, **kw)
        if sign != "none":
            fx.sign_tree(rsp, sign, self.key, self.cert)
        return base64.b64encode(fx.to_bytes(rsp)).decode()

    def stop(self):
        self.proc.stop()


def secret():
    return base64.b64encode(os.urandom(32)).decode()


class Gate:
    """A running ssogate with an INI file we control."""

    def __init__(self, tmp, upstream_urls, idp=None, extra=None, name="ssogate", env=None,
                 port=None, jwt_keys=None, launcher=None):
        self.tmp = tmp
        self.name = name
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.ini = os.path.join(tmp, name + ".ini")
        self.settings = {
            "server": {"listen": "127.0.0.1:%d" % self.port, "public_url": self.url,
                       "trusted_proxies": "1", "max_body": "1MiB", "client_timeout": "10s",
                       "drain_timeout": "5s"},
            "upstream": {"url": " ".join(upstream_urls), "connect_timeout": "2s", "timeout": "10s"},
            "session": {"secret": secret(), "session_page": "true"},
            "access": {"allowed_domains": "example.com",
                       "public_paths": "/echo /bytes /slow /status /cookies /die /ping /public /setcookie"},
            "headers": {"jwt": ""},
            "metrics": {"listen": "127.0.0.1:%d" % self.metrics_port},
            "log": {"level": "info"},
        }
        if idp is not None:
            self.settings["saml"] = {"idp_metadata": idp.metadata_path, "groups_attribute": "groups",
                                     "name_attribute": "displayName"}
        for section, values in (extra or {}).items():
            self.settings.setdefault(section, {}).update(values)
        self.write()
        # Only the settings a test asks for: a stray SSOGATE_* would be refused.
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SSOGATE_")}
        environ.update(env or {})
        # launcher: a command that execs the rest of its arguments (same pid).
        self.proc = Proc((launcher or []) + [BIN, "-c", self.ini], tmp, name, env=environ)
        wait_until(lambda: requests.get(self.url + "/healthz", timeout=1).status_code == 200,
                   what="ssogate /healthz")

    def write(self, settings=None):
        settings = settings or self.settings
        with open(self.ini + ".tmp", "w") as f:
            for section, values in settings.items():
                f.write("[%s]\n" % section)
                for k, v in values.items():
                    f.write("%s = %s\n" % (k, v))
        os.replace(self.ini + ".tmp", self.ini)

    def reload(self, raw_text=None):
        if raw_text is not None:
            with open(self.ini, "w") as f:
                f.write(raw_text)
        else:
            self.write()
        self.proc.p.send_signal(signal.SIGHUP)

    @property
    def pid(self):
        return self.proc.p.pid

    def access_log(self):
        self.proc.out.flush()
        with open(self.proc.out_path) as f:
            return [json.loads(l) for l in f if l.startswith("{")]

    def errors(self):
        with open(self.proc.err_path) as f:
            return f.read()

    def metrics(self):
        text = requests.get("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def stop(self, sig=signal.SIGKILL):
        return self.proc.stop(sig)


def login(gate, client, email="alice@example.com", groups="", start="/"):
    """Signs in through the test IdP like a browser: returns the final response."""
    r = client.get(gate.url + start, headers={"Accept": "text/html"}, allow_redirects=False)
    assert r.status_code == 302, r.text
    r = client.get(gate.url + r.headers["Location"], allow_redirects=False)
    assert r.status_code == 302, r.text
    sso = r.headers["Location"]
    r = client.get(sso, allow_redirects=False)
    assert r.status_code == 200, r.text
    request_id = re.search(r'name=request_id value="([^"]*)"', r.text).group(1)
    relay = re.search(r'name=relay_state value="([^"]*)"', r.text).group(1)
    idp_base = sso.split("/sso")[0]
    r = client.post(idp_base + "/login", data={"email": email, "groups": groups,
                                               "request_id": request_id, "relay_state": relay})
    assert r.status_code == 200, r.text
    saml = re.search(r'name="?SAMLResponse"? value="([^"]*)"', r.text).group(1)
    relay = re.search(r'name="?RelayState"? value="([^"]*)"', r.text).group(1)
    acs = html.unescape(re.search(r'<form method=post action="([^"]*)"', r.text).group(1))
    return client.post(acs, data={"SAMLResponse": saml, "RelayState": relay},
                       allow_redirects=False)


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    for proc in list(Proc.live):
        proc.stop()


@pytest.fixture
def upstream(tmp_path):
    u = Upstream(str(tmp_path))
    yield u
    u.stop()


@pytest.fixture
def gate_factory(tmp_path):
    gates = []

    def make(*args, **kw):
        g = Gate(str(tmp_path), *args, **kw)
        gates.append(g)
        return g

    yield make
    # A clean SIGTERM exit, so LeakSanitizer (sanitizer builds) checks every test.
    codes = {g.name: g.stop(signal.SIGTERM) for g in gates if g.proc.p.poll() is None}
    bad = {name: code for name, code in codes.items() if code != 0}
    assert not bad, "ssogate exited badly at teardown: %s (see its .err file)" % bad


@pytest.fixture
def gate(gate_factory, upstream):
    return gate_factory([upstream.url])


@pytest.fixture
def idp_gate(tmp_path, gate_factory, upstream):
    """ssogate with SAML: (gate, idp)."""
    port = free_port()
    public = "http://127.0.0.1:%d" % port
    idp = Idp(str(tmp_path), public)
    try:
        yield gate_factory([upstream.url], idp=idp, port=port), idp
    finally:
        idp.stop()


def two_gates_sharing_a_store(tmp_path, gate_factory, upstream, redis, store):
    """For a fixture to yield from: two tasks of one gate, A and B, behind one public
    URL (A's, as behind one ALB), one IdP and one [store] (its settings in store,
    served by redis); yields (a, b, idp, redis), then stops the IdP and redis."""
    port_a, port_b = free_port(), free_port()
    public = "http://127.0.0.1:%d" % port_a
    idp = Idp(str(tmp_path), public)
    common = {"store": store, "session": {"secret": secret(), "session_page": "true"},
              "server": {"public_url": public}}
    a = gate_factory([upstream.url], idp=idp, port=port_a, name="a", extra=common)
    b = gate_factory([upstream.url], idp=idp, port=port_b, name="b", extra=common)
    yield a, b, idp, redis
    idp.stop()
    redis.stop()


def rsa_key(tmp, name):
    """A 2048-bit RSA private key file, mode 600 (ssogate refuses keys others may read)."""
    path = os.path.join(tmp, name)
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", path], check=True, capture_output=True)
    os.chmod(path, 0o600)
    return path
