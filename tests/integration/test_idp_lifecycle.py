"""The IdP's lifecycle against the real binary (issue 12, points 4-6):

- expired IdP signing certificates degrade instead of taking the gate down
  (/healthz 200, /readyz 503 naming the certificate, the expiry gauge
  negative, sessions kept, logins refused with a page that says why) unless
  [saml] accept_expired_idp_certificate = true;
- IdP metadata from a URL, served by a small metadata server in this file
  the way Okta, Entra ID, ADFS and Keycloak publish theirs (a GET of an XML
  document, optionally signed like a federation's): start, rollover without
  reload, the cache when the URL is down, degraded start without a cache,
  signature refused, slow / huge / redirected answers bounded and refused;
- [saml] acs_path, as when ssogate takes over Redash's own SAML app
  (ACS https://redash.example.com/saml/callback?org_slug=default).
"""
import base64
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import xmlsec
from lxml import etree

from conftest import BIN, SLOW, Gate, Idp, free_port, fx, login, wait_until

ACS_REDASH = "/saml/callback?org_slug=default"


# ---- helpers ---------------------------------------------------------------------


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def start_login(gate, client):
    """GET /ssogate/login like a browser: the AuthnRequest's ID and ACS URL."""
    r = client.get(gate.url + "/ssogate/login?return_to=/echo/in", allow_redirects=False)
    assert r.status_code == 302, r.text
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    req = etree.fromstring(zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15))
    return req.get("ID"), req.get("AssertionConsumerServiceURL")


def response_b64(gate, key, cert, request_id, acs=None, sign="assertion", **kw):
    acs = acs or gate.url + "/ssogate/acs"
    rsp = fx.build_tree(in_response_to=request_id, audience=gate.url + "/ssogate/metadata",
                        destination=kw.pop("destination", acs), recipient=kw.pop("recipient", acs),
                        issuer=kw.pop("issuer", fx.IDP_ENTITY_ID), name_id="alice@example.com",
                        attributes={"displayName": ["Alice"]}, **kw)
    fx.sign_tree(rsp, sign, key, cert)
    return base64.b64encode(fx.to_bytes(rsp)).decode()


def sign_in(gate, client, key, cert, acs_path="/ssogate/acs"):
    """A login whose response is signed by key: the ACS's answer."""
    rid, acs = start_login(gate, client)
    assert acs == gate.url + acs_path
    return client.post(acs, data={"SAMLResponse": response_b64(gate, key, cert, rid, acs=acs)},
                       allow_redirects=False)


def readyz(gate):
    r = requests.get(gate.url + "/readyz", timeout=5)
    return r.status_code, r.json()["checks"]["idp"]


def sign_metadata(xml, key, cert):
    """An enveloped signature on the EntityDescriptor, as federations sign."""
    md = etree.fromstring(xml)
    md.set("ID", "_md%d" % time.monotonic_ns())
    sig = xmlsec.template.create(md, xmlsec.constants.TransformExclC14N,
                                 xmlsec.constants.TransformRsaSha256, ns="ds")
    md.insert(0, sig)
    ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="#" + md.get("ID"))
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(key, xmlsec.constants.KeyDataFormatPem)
    ctx.register_id(md, "ID")
    ctx.sign(sig)
    return etree.tostring(md, xml_declaration=True, encoding="UTF-8")


class MetadataServer:
    """Serves IdP metadata at /metadata; self.mode picks how it answers
    ("alternate": self.documents in turn, the next one on every GET)."""

    def __init__(self, document):
        self.document = document
        self.documents = [document]
        self.mode = "ok"
        self.hits = 0
        self.last_hit = 0.0  # time.monotonic() of the last GET
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/metadata" % self.port
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits += 1
                hit = outer.hits
                outer.last_hit = time.monotonic()
                mode = outer.mode
                if mode == "redirect-other-host":
                    return self.redirect("http://localhost:%d/metadata" % outer.port)
                if mode == "redirect-same-host" and self.path == "/metadata":
                    return self.redirect("/moved/metadata")
                if mode == "slow":
                    time.sleep(30)
                    return
                if mode == "error":
                    return self.send(500, b"oops")
                if mode == "alternate":
                    return self.send(200, outer.documents[(hit - 1) % len(outer.documents)])
                if mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.end_headers()  # no Content-Length: the size shows while receiving
                    try:
                        for _ in range(64):
                            self.wfile.write(b"<!-- " + b"x" * 65536 + b" -->")
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                return self.send(200, outer.document)

            def redirect(self, location):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def md_server():
    servers = []

    def make(document):
        s = MetadataServer(document)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def url_gate(gate_factory, upstream, url, port=None, extra=None, name="ssogate", **saml):
    """metadata_refresh 5 s, the shortest [saml] allows: each refresh a test
    waits for is one such interval."""
    settings = {"idp_metadata": url, "metadata_refresh": "5s", "name_attribute": "displayName"}
    settings.update(saml)
    return gate_factory([upstream.url], extra=dict(extra or {}, saml=settings), port=port, name=name)


def fetch_count(gate, result):
    return gate.metrics().get('ssogate_idp_metadata_fetches_total{result="%s"}' % result, 0)


# ---- point 4: expired certificates ---------------------------------------------------


def test_expired_idp_certificate_degrades(tmp_path, gate_factory, upstream):
    good_key, good_cert = fx.make_keypair("current idp")
    old_key, old_cert = fx.make_keypair("expired idp", expired=True)
    md = write(str(tmp_path / "idp.xml"), fx.idp_metadata_xml(good_cert))
    gate = gate_factory([upstream.url], extra={"saml": {"idp_metadata": md,
                                                        "name_attribute": "displayName"}})
    client = requests.Session()
    assert sign_in(gate, client, good_key, good_cert).status_code == 303
    assert client.get(gate.url + "/ssogate/session", timeout=5).status_code == 200

    # The IdP's certificate is now expired (the metadata has only that one):
    # a reload loads it, with a warning, instead of failing.
    write(md, fx.idp_metadata_xml(old_cert))
    gate.reload()
    wait_until(lambda: readyz(gate)[0] == 503 and "expired" in readyz(gate)[1], what="readyz 503")
    status, why = readyz(gate)
    assert "CN=expired idp" in why and "accept_expired_idp_certificate" in why
    assert requests.get(gate.url + "/healthz", timeout=5).status_code == 200
    assert gate.metrics()['ssogate_idp_cert_days_to_expiry{index="0"}'] < 0
    wait_until(lambda: "IdP not ready" in gate.errors() or "IdP not ready" in open(gate.proc.out_path).read(),
               what="the warning")

    # Sessions keep working; a login signed by the expired key is refused
    # with a page that says the certificate expired.
    assert client.get(gate.url + "/ssogate/session", timeout=5).status_code == 200
    r = sign_in(gate, requests.Session(), old_key, old_cert)
    assert r.status_code == 503
    assert "signing certificate has expired" in r.text
    assert gate.metrics()['ssogate_logins_failed_total{reason="idp_certificate_expired"}'] == 1

    # --check says so, as an error.
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert out.returncode == 1
    assert "EXPIRED" in out.stdout


def short_lived_keypair(cn, seconds):
    """A certificate that expires `seconds` from now (python3-cryptography)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(seconds=seconds))
            .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            cert.public_bytes(serialization.Encoding.PEM))


def test_certificate_that_expires_while_running(tmp_path, gate_factory, upstream):
    # Time enough to start and sign in once: measured 0.25 s plain, 0.4-1.4 s
    # under ASan, against 2 and 5 s (the guard below).
    lifetime = 2 + SLOW
    key, cert = short_lived_keypair("idp about to expire", lifetime)
    born = time.monotonic()
    md = write(str(tmp_path / "idp.xml"), fx.idp_metadata_xml(cert))
    gate = gate_factory([upstream.url], extra={"saml": {"idp_metadata": md,
                                                        "name_attribute": "displayName"}})
    wait_until(lambda: readyz(gate)[0] == 200, what="ready")
    client = requests.Session()
    assert sign_in(gate, client, key, cert).status_code == 303
    # notAfter is in whole seconds: the certificate may expire up to 1 s early.
    assert time.monotonic() - born < lifetime - 1, "too slow to test before the expiry"
    # No reload: the same snapshot judges the certificate by the clock.
    wait_until(lambda: readyz(gate)[0] == 503, timeout=lifetime + 10, what="readyz 503 after expiry")
    assert "CN=idp about to expire" in readyz(gate)[1]
    assert gate.metrics()['ssogate_idp_cert_days_to_expiry{index="0"}'] <= 0  # -0.00 days
    r = sign_in(gate, requests.Session(), key, cert)
    assert r.status_code == 503 and "signing certificate has expired" in r.text
    assert client.get(gate.url + "/ssogate/session", timeout=5).status_code == 200
    assert gate.metrics()["ssogate_reloads_total{result=\"ok\"}"] == 0


def test_accept_expired_idp_certificate(tmp_path, gate_factory, upstream):
    old_key, old_cert = fx.make_keypair("expired idp", expired=True)
    md = write(str(tmp_path / "idp.xml"), fx.idp_metadata_xml(old_cert))
    gate = gate_factory([upstream.url], extra={"saml": {
        "idp_metadata": md, "name_attribute": "displayName",
        "accept_expired_idp_certificate": "true"}})
    wait_until(lambda: readyz(gate)[0] == 200, what="ready")
    assert "accepted" in readyz(gate)[1]
    assert sign_in(gate, requests.Session(), old_key, old_cert).status_code == 303
    # Another key is still refused: only the metadata's key is trusted.
    other_key, other_cert = fx.make_keypair("other", expired=True)
    assert sign_in(gate, requests.Session(), other_key, other_cert).status_code == 403
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert out.returncode == 1 and "EXPIRED" in out.stdout and "WARNING" in out.stdout


# ---- point 5: metadata from a URL -----------------------------------------------------


def test_url_metadata_start_and_rollover_without_reload(tmp_path, gate_factory, upstream, md_server):
    key1, cert1 = fx.make_keypair("idp 2026")
    key2, cert2 = fx.make_keypair("idp 2027")
    server = md_server(fx.idp_metadata_xml(cert1))
    cache = str(tmp_path / "cache" / "idp.xml")
    os.makedirs(os.path.dirname(cache))
    gate = url_gate(gate_factory, upstream, server.url, metadata_cache=cache)
    wait_until(lambda: readyz(gate)[1] == "ok", what="metadata fetched")
    assert sign_in(gate, requests.Session(), key1, cert1).status_code == 303
    assert sign_in(gate, requests.Session(), key2, cert2).status_code == 403
    assert os.stat(cache).st_mode & 0o777 == 0o600
    with open(cache, "rb") as f:
        assert f.read() == server.document

    # The IdP publishes the next certificate next to the current one, then
    # signs with it: trusted after the next refresh, no SIGHUP.
    server.document = fx.idp_metadata_xml(cert1, cert2)
    wait_until(lambda: 'ssogate_idp_cert_days_to_expiry{index="1"}' in gate.metrics(), timeout=20,
               what="the refresh")
    assert sign_in(gate, requests.Session(), key2, cert2).status_code == 303
    assert sign_in(gate, requests.Session(), key1, cert1).status_code == 303
    assert gate.metrics()["ssogate_config_generation"] == 1
    assert fetch_count(gate, "ok") >= 2
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "IdP metadata: fetched from " + server.url in out.stdout
    assert "IdP signing certificate 2: expires in" in out.stdout


@pytest.mark.concurrency
def test_logins_during_metadata_swaps(tmp_path, gate_factory, upstream, md_server):
    """Logins, /readyz and scrapes in parallel while a refresh swaps the IdP
    holder (the document alternates on every fetch, so every refresh swaps):
    no login fails, and under ThreadSanitizer no race is reported (the gate
    exits 0)."""
    key1, cert1 = fx.make_keypair("idp")
    _, cert2 = fx.make_keypair("idp next")
    server = md_server(fx.idp_metadata_xml(cert1))
    server.documents = [fx.idp_metadata_xml(cert1), fx.idp_metadata_xml(cert1, cert2)]
    server.mode = "alternate"
    gate = url_gate(gate_factory, upstream, server.url,
                    extra={"ratelimit": {"login": "100000/m", "burst": "1000"}})
    wait_until(lambda: readyz(gate)[1] == "ok", what="metadata fetched")
    stop = threading.Event()
    failures = []
    logins_done = []

    def logins():
        while not stop.is_set():
            r = sign_in(gate, requests.Session(), key1, cert1)
            if r.status_code != 303:
                failures.append(r.status_code)
            logins_done.append(1)
            readyz(gate)
            gate.metrics()

    def log():
        return gate.errors() + open(gate.proc.out_path).read()

    threads = [threading.Thread(target=logins) for _ in range(4)]
    for t in threads:
        t.start()
    loaded = log().count("IdP metadata loaded from")
    swaps = fetch_count(gate, "ok")
    try:
        # One refresh: the second document (two certificates) replaces the
        # first while the four threads sign in.
        wait_until(lambda: fetch_count(gate, "ok") >= swaps + 1, timeout=30, what="a refresh")
        during = len(logins_done)
        wait_until(lambda: len(logins_done) >= during + 8, what="logins after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert log().count("IdP metadata loaded from") > loaded, "no swap happened"
    assert "2 signing certificate(s)" in log()
    assert failures == []


def test_url_down_at_start_uses_the_cache(tmp_path, gate_factory, upstream, md_server):
    key1, cert1 = fx.make_keypair("idp")
    server = md_server(fx.idp_metadata_xml(cert1))
    cache = str(tmp_path / "idp-cache.xml")
    port = free_port()
    gate = url_gate(gate_factory, upstream, server.url, port=port, metadata_cache=cache)
    wait_until(lambda: os.path.exists(cache), what="the cache")
    gate.stop()
    server.stop()  # the IdP's metadata host is down

    gate = url_gate(gate_factory, upstream, server.url, port=port, metadata_cache=cache)
    assert readyz(gate)[1] == "ok"
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert out.returncode == 1 and "NOT fetched" in out.stdout, out.stdout
    assert sign_in(gate, requests.Session(), key1, cert1).status_code == 303
    wait_until(lambda: fetch_count(gate, "failed") >= 1, what="a failed fetch counted")
    assert "keeping the last good document" in gate.errors() + open(gate.proc.out_path).read()
    assert readyz(gate)[1] == "ok"  # stale only after 24 h


def test_url_down_at_start_without_cache_degrades(tmp_path, gate_factory, upstream):
    url = "http://127.0.0.1:%d/metadata" % free_port()  # nobody listens
    gate = url_gate(gate_factory, upstream, url)
    assert requests.get(gate.url + "/healthz", timeout=5).status_code == 200
    wait_until(lambda: "Connection refused" in readyz(gate)[1] or "connect" in readyz(gate)[1].lower(),
               what="the fetch failure in readyz")
    status, why = readyz(gate)
    assert status == 503 and "not loaded" in why
    r = requests.get(gate.url + "/ssogate/login", allow_redirects=False, timeout=5)
    assert r.status_code == 503 and "metadata" in r.text
    r = requests.post(gate.url + "/ssogate/acs", data={"SAMLResponse": "x"}, timeout=5)
    assert r.status_code == 503


def test_metadata_signing_cert(tmp_path, gate_factory, upstream, md_server):
    """Each replacement document against its own gate and metadata server,
    all switched at once (independent cases: one refresh interval in all)."""
    key1, cert1 = fx.make_keypair("idp")
    key2, cert2 = fx.make_keypair("attacker's idp key")
    fed_key, fed_cert = fx.make_keypair("federation signer")
    evil_key, evil_cert = fx.make_keypair("not the federation")
    fed = write(str(tmp_path / "federation.crt"), fed_cert)
    first = sign_metadata(fx.idp_metadata_xml(cert1), fed_key, fed_cert)

    # Replaced by an unsigned document, or one signed by another key:
    # refused like a failed fetch, the last good one stays.
    refused = {"unsigned": (fx.idp_metadata_xml(cert2), "not signed"),
               "other-key": (sign_metadata(fx.idp_metadata_xml(cert2), evil_key, evil_cert),
                             "does not verify with [saml] metadata_signing_cert")}
    # A signed document that moves the signature's reference off the root
    # (wrapping) is refused too.
    signed = etree.fromstring(sign_metadata(fx.idp_metadata_xml(cert1), fed_key, fed_cert))
    signed.set("ID", "_other")
    refused["wrapped"] = (etree.tostring(signed), None)
    # A federation's aggregate: an EntitiesDescriptor signed as a whole,
    # holding this IdP and an SP entity: the IdP entity is used.
    entity = etree.fromstring(fx.idp_metadata_xml(cert2))
    sp_entity = etree.fromstring(b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                                 b'entityID="https://sp.example.org"><md:SPSSODescriptor '
                                 b'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>'
                                 b'</md:EntityDescriptor>')
    aggregate = etree.Element("{urn:oasis:names:tc:SAML:2.0:metadata}EntitiesDescriptor",
                              nsmap={"md": "urn:oasis:names:tc:SAML:2.0:metadata"})
    aggregate.extend([sp_entity, entity])

    cases = list(refused) + ["aggregate"]
    servers, gates = {}, {}
    for case in cases:
        servers[case] = md_server(first)
        gates[case] = url_gate(gate_factory, upstream, servers[case].url, metadata_signing_cert=fed,
                               name="gate-" + case,
                               extra={"ratelimit": {"login": "100000/m", "burst": "1000"}})
    for case in cases:
        wait_until(lambda: readyz(gates[case])[1] == "ok", what="signed metadata accepted")
        assert sign_in(gates[case], requests.Session(), key1, cert1).status_code == 303

    before = {case: fetch_count(gates[case], "failed" if case in refused else "ok") for case in cases}
    for case, (document, _) in refused.items():
        servers[case].document = document
    servers["aggregate"].document = sign_metadata(etree.tostring(aggregate), fed_key, fed_cert)

    for case, (_, reason) in refused.items():
        gate = gates[case]
        wait_until(lambda: fetch_count(gate, "failed") > before[case], timeout=20, what=case)
        if reason is not None:
            assert reason in gate.errors() + open(gate.proc.out_path).read()
        assert sign_in(gate, requests.Session(), key2, cert2).status_code == 403
        assert sign_in(gate, requests.Session(), key1, cert1).status_code == 303

    gate = gates["aggregate"]
    wait_until(lambda: sign_in(gate, requests.Session(), key2, cert2).status_code == 303,
               timeout=20, interval=0.5, what="the aggregate's IdP entity trusted")
    assert fetch_count(gate, "ok") > before["aggregate"]


# Each hostile answer, what the gate logs for it, and how long it may take
# from the switch, times SLOW (one 5 s refresh interval; "slow": plus the
# 10 s total timeout of proxy/ops/idp_refresh.h).
HOSTILE = (("slow", "Operation timed out", 20),
           ("error", "HTTP status 500", 20),
           ("huge", "larger than 1048576 bytes", 20),
           ("redirect-other-host", "refused (only the same scheme, host and port)", 20))


def test_hostile_metadata_answers_are_bounded(tmp_path, gate_factory, upstream, md_server):
    """The cases are independent: each has its own metadata server and gate,
    all switched at once, so the test takes one refresh interval and the
    fetch timeout, not their sum over the cases."""
    key1, cert1 = fx.make_keypair("idp")
    # Each gate's server turns hostile once the gate has the good document;
    # the slowest case first, so the others start while it waits.
    modes = [mode for mode, _, _ in HOSTILE] + ["redirect-same-host"]
    servers, gates, hits, t0 = {}, {}, {}, {}
    for mode in modes:
        servers[mode] = md_server(fx.idp_metadata_xml(cert1))
        gates[mode] = url_gate(gate_factory, upstream, servers[mode].url, name="gate-" + mode)
        wait_until(lambda: readyz(gates[mode])[1] == "ok", what="metadata fetched (%s)" % mode)
        hits[mode], t0[mode] = servers[mode].hits, time.monotonic()
        servers[mode].mode = mode

    def log(gate):
        return gate.errors() + open(gate.proc.out_path).read()

    # Same host: followed (the first GET is redirected, the second served).
    # Another host: refused, saying where it pointed.
    pending = {mode: (expected, bound) for mode, expected, bound in HOSTILE}
    followed = False
    deadline = time.monotonic() + 40 * SLOW
    while pending or not followed:
        assert time.monotonic() < deadline, "still waiting for %s" % (sorted(pending) or "the redirect")
        if not followed and servers["redirect-same-host"].hits >= hits["redirect-same-host"] + 2:
            followed = True
            wait_until(lambda: fetch_count(gates["redirect-same-host"], "ok") >= 2,
                       what="the redirected fetch counted as good")
            assert "redirect" not in log(gates["redirect-same-host"])
        for mode, (expected, bound) in list(pending.items()):
            if expected in log(gates[mode]):
                # Bounded: "slow" by the 10 s total timeout (plus the refresh interval).
                assert time.monotonic() - t0[mode] < bound * SLOW, mode
                del pending[mode]
                # Meanwhile the gate serves, with the last good document.
                assert requests.get(gates[mode].url + "/healthz", timeout=2).status_code == 200
                assert sign_in(gates[mode], requests.Session(), key1, cert1).status_code == 303
                assert readyz(gates[mode])[1] == "ok"
                if mode == "error":  # the refused fetch is retried: on a slow host, this time
                    hits["error"] = servers["error"].hits
                    servers["error"].mode = "slow"
        time.sleep(0.1)

    # A fetch hanging on a slow host does not hold up SIGTERM: one that
    # started under 7 s ago is still in flight (it gives up after 10 s).
    gate, server = gates["error"], servers["error"]
    wait_until(lambda: server.hits > hits["error"] and time.monotonic() - server.last_hit < 7,
               timeout=20, what="a slow fetch in flight")
    t1 = time.monotonic()
    assert gate.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t1 < 5 * SLOW
    assert "Callback aborted" in log(gate)  # it was in flight: the stop cut it short


def test_http_metadata_url_only_on_loopback(tmp_path):
    ini = tmp_path / "x.ini"
    ini.write_text("[server]\npublic_url = https://redash.example.com\n"
                   "[upstream]\nurl = http://127.0.0.1:1\n"
                   "[session]\nsecret = %s\n[access]\nallowed_domains = example.com\n"
                   "[headers]\njwt =\n"
                   "[saml]\nidp_metadata = http://idp.example.com/metadata\n"
                   % base64.b64encode(os.urandom(32)).decode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGATE_")}
    out = subprocess.run([BIN, "--check", "-c", str(ini)], capture_output=True, text=True,
                         timeout=30 * SLOW, env=env)
    assert out.returncode != 0
    assert "plain http:// only for loopback" in out.stderr


# ---- point 6: acs_path ---------------------------------------------------------------


def test_acs_path_takes_over_an_existing_saml_app(tmp_path, gate_factory, upstream):
    port = free_port()
    public = "http://127.0.0.1:%d" % port
    idp = Idp(str(tmp_path), public, acs_path=ACS_REDASH)
    try:
        gate = gate_factory([upstream.url], idp=idp, port=port,
                            extra={"saml": {"acs_path": ACS_REDASH},
                                   "access": {"public_paths": "/saml /echo /ping"}})
        # The metadata and AuthnRequest name the new ACS.
        md = requests.get(gate.url + "/ssogate/metadata", timeout=5).text
        assert 'Location="%s/saml/callback?org_slug=default"' % public in md
        client = requests.Session()
        r = login(gate, client)
        assert r.status_code == 303, r.text
        assert client.get(gate.url + "/ssogate/session", timeout=5).json()["email"] == "alice@example.com"

        # A response for /ssogate/acs is refused at the new ACS (Destination /
        # Recipient), and /ssogate/acs is no ACS any more.
        rid, acs = start_login(gate, client)
        wrong = response_b64(gate, idp.key, idp.cert, rid, acs=public + "/ssogate/acs", sign="both",
                             issuer=idp.entity_id)
        r = client.post(acs, data={"SAMLResponse": wrong}, allow_redirects=False)
        assert r.status_code == 403
        assert "sign-in refused (destination)" in gate.errors() + open(gate.proc.out_path).read()
        r = client.post(gate.url + "/ssogate/acs", data={"SAMLResponse": wrong}, allow_redirects=False)
        assert r.status_code == 405  # no ACS there: ssogate's other endpoints take GET

        # The ACS path never reaches the app, even under a public prefix, with
        # any method or query.
        assert client.get(gate.url + ACS_REDASH, timeout=5).status_code == 405
        assert client.get(gate.url + "/saml/callback?org_slug=other", timeout=5).status_code == 404
        assert client.post(gate.url + "/saml/callback", data={"SAMLResponse": "x"},
                           allow_redirects=False).status_code == 404
        assert client.get(gate.url + "/saml/other", timeout=5).status_code == 200  # public, forwarded
        paths = [req["target"] for req in upstream.requests_seen()]
        assert "/saml/other" in paths and not any(p.startswith("/saml/callback") for p in paths), paths
    finally:
        idp.stop()


@pytest.mark.parametrize("value, message", [
    ("saml/callback", "must be a path"),
    ("//evil.example/acs", "must be a path"),
    ("/saml/callback#x", "fragment"),
    ("/saml/../acs", "dot segments"),
    ("/saml/call back", "only letters"),
    ("/ssogate/login", "under /ssogate/"),
    ("/ssogate/ac", "under /ssogate/"),
    ("/healthz", "already answers"),
])
def test_acs_path_validation(tmp_path, value, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGATE_")}
    env.update({"SSOGATE_SERVER_PUBLIC_URL": "https://redash.example.com",
                "SSOGATE_UPSTREAM_URL": "http://127.0.0.1:1",
                "SSOGATE_SESSION_SECRET": base64.b64encode(os.urandom(32)).decode(),
                "SSOGATE_ACCESS_ALLOWED_DOMAINS": "example.com", "SSOGATE_HEADERS_JWT": "",
                "SSOGATE_SAML_ACS_PATH": value})
    out = subprocess.run([BIN, "--check"], capture_output=True, text=True, timeout=30 * SLOW, env=env)
    assert out.returncode != 0
    assert "acs_path" in out.stderr and message in out.stderr, out.stderr
