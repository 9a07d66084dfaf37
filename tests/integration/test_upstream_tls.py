"""https:// upstreams: TLS through tls/ (OpenSSL), verified against [upstream]
tls_ca_file (or the system CAs) and the host name; sessions resumed across
connections.  The origin is Debian's nginx with a test CA made here by the
openssl command line (nginx's ssl module docs: ssl_certificate,
$ssl_session_reused)."""
import os
import subprocess

import pytest
import requests

from conftest import Proc, free_port, wait_until


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=" + name)
    return key, pem


def make_cert(d, ca_key, ca_pem, name, san, days="1"):
    key, csr, pem = (os.path.join(d, name + e) for e in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", days, "-extfile", ext)
    return key, pem


class TlsOrigin:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "tls")
        os.makedirs(self.dir)
        self.ca_key, self.ca = make_ca(self.dir, "test-ca")
        _, self.other_ca = make_ca(self.dir, "other-ca")
        key, cert = make_cert(self.dir, self.ca_key, self.ca, "localhost", "DNS:localhost")
        self.port = free_port()
        self.log = os.path.join(self.dir, "access.log")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            # master_process off: one process, the one Proc kills; with a
            # master, SIGKILL left its worker running, port and all.
            f.write("""worker_processes 1;
daemon off;
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 256; }
http {
  log_format t '$request_uri $ssl_session_reused $ssl_server_name $connection';
  access_log %(log)s t;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  server {
    listen 127.0.0.1:%(port)d ssl;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    ssl_session_cache shared:tls:1m;
    keepalive_requests 1000;
    location / { return 200 "tls origin\\n"; }
  }
}
""" % {"d": self.dir, "log": self.log, "port": self.port, "cert": cert, "key": key})
        self.proc = Proc(["/usr/sbin/nginx", "-p", self.dir, "-c", conf], tmp, "nginx-tls")
        wait_until(lambda: os.path.exists(os.path.join(self.dir, "nginx.pid")), what="nginx")

    def lines(self):
        """Requests that came through the gate (the readiness prober's /ping left out)."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [l.split() for l in f if l.startswith("/public/")]

    def stop(self):
        self.proc.stop()


@pytest.fixture
def origin(tmp_path):
    o = TlsOrigin(str(tmp_path))
    yield o
    o.stop()


def test_https_upstream_verified_with_the_configured_ca(gate_factory, origin):
    g = gate_factory(["https://localhost:%d" % origin.port],
                     extra={"upstream": {"tls_ca_file": origin.ca}, "server": {"workers": "1"}})
    for _ in range(3):
        r = requests.get(g.url + "/public/a", timeout=5)
        assert (r.status_code, r.text) == (200, "tls origin\n")
    wait_until(lambda: len(origin.lines()) >= 3, what="nginx access log")
    lines = origin.lines()
    assert all(l[2] == "localhost" for l in lines)  # SNI sent
    assert len({l[3] for l in lines}) == 1          # one kept-alive TLS connection
    # The readiness prober (libcurl, off the request path) trusts the same CA.
    wait_until(lambda: "upstream ready" in g.errors(), timeout=15, what="the prober's verdict")


def test_tls_sessions_are_resumed_across_connections(gate_factory, origin):
    g = gate_factory(["https://localhost:%d" % origin.port],
                     extra={"upstream": {"tls_ca_file": origin.ca, "keepalive": "0"},
                            "server": {"workers": "1"}})
    for _ in range(3):
        assert requests.get(g.url + "/public/b", timeout=5).status_code == 200
    wait_until(lambda: len(origin.lines()) >= 3, what="nginx access log")
    lines = origin.lines()
    assert len({l[3] for l in lines}) == 3          # a connection each (keepalive = 0)
    assert lines[0][1] == "." and "r" in [l[1] for l in lines[1:]]


def test_a_certificate_from_another_ca_is_refused(gate_factory, origin):
    g = gate_factory(["https://localhost:%d" % origin.port],
                     extra={"upstream": {"tls_ca_file": origin.other_ca}})
    r = requests.get(g.url + "/public/c", timeout=5)
    assert r.status_code == 502
    wait_until(lambda: "certificate verify failed" in g.errors(), what="the TLS reason logged")
    assert origin.lines() == []  # no request ever went over the unverified connection


def test_a_name_the_certificate_does_not_hold_is_refused(gate_factory, origin):
    # The certificate names localhost only; dialled as 127.0.0.1 it must be refused.
    g = gate_factory(["https://127.0.0.1:%d" % origin.port],
                     extra={"upstream": {"tls_ca_file": origin.ca}})
    r = requests.get(g.url + "/public/d", timeout=5)
    assert r.status_code == 502
    wait_until(lambda: "failed before the response head" in g.errors(), what="the refusal logged")
    assert origin.lines() == []


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path):
    from conftest import BIN, secret
    ini = tmp_path / "bad.ini"
    ini.write_text("[server]\npublic_url = http://127.0.0.1:1\n[upstream]\nurl = https://localhost:1\n"
                   "tls_ca_file = %s/missing.pem\n[session]\nsecret = %s\n[access]\n"
                   "allowed_domains = example.com\n" % (tmp_path, secret()))
    p = subprocess.run([BIN, "--check", "-c", str(ini)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "tls_ca_file" in p.stdout + p.stderr
