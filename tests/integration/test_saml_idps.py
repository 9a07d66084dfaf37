"""Sign-in end to end through the real binary with the test IdP sending the
shape each product sends (tests/idp/server.py PRODUCTS, each from that
product's documentation): Okta, Microsoft Entra ID, ADFS, Keycloak,
Shibboleth IdP (encrypted when the SP publishes an encryption certificate),
Auth0 (the Response's Signature last, after the Assertion; the NameID its
user id, the email a claim), OneLogin and Auth0 set to rsa-sha1 (only with
[saml] allow_sha1), PingFederate (no Destination).  And what must still be
refused through the same path."""
import os
import sys

import pytest
import requests

import saml_fixtures as fx
from conftest import Idp, free_port, login

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "idp"))
import server as idp_server  # noqa: E402


def sp_encryption_keys(tmp):
    key, cert = fx.make_keypair("ssogate SP encryption")
    key_path, cert_path = os.path.join(tmp, "sp-enc.key"), os.path.join(tmp, "sp-enc.crt")
    with open(key_path, "wb") as f:
        f.write(key)
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as f:
        f.write(cert)
    return key_path, cert_path


def saml_settings(product, idp, key_path=None, cert_path=None, sha1=False):
    p = idp_server.PRODUCTS[product]
    s = {"idp_metadata": idp.metadata_path, "name_attribute": p["name"], "groups_attribute": p["groups"]}
    if p["email"]:
        s["email_attribute"] = p["email"]
    if key_path:
        s["sp_decryption_key"] = key_path
        s["sp_decryption_cert"] = cert_path
    if sha1:
        s["allow_sha1"] = "true"
    return s


def run_product(tmp_path, gate_factory, upstream, product, encrypt, sha1=False):
    port = free_port()
    key_path = cert_path = None
    args = ["--product", product]
    if encrypt:
        key_path, cert_path = sp_encryption_keys(str(tmp_path))
        args += ["--encrypt-to", cert_path]
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port, extra_args=args)
    gate = gate_factory([upstream.url], idp=idp, port=port,
                        extra={"saml": saml_settings(product, idp, key_path, cert_path, sha1)})
    return idp, gate


@pytest.mark.parametrize("product,encrypt,sha1", [
    ("okta", False, False), ("okta", True, False),
    ("entra", False, False), ("entra", True, False),
    ("adfs", False, False), ("adfs", True, False),
    ("keycloak", True, False), ("shibboleth", True, False),
    ("auth0", False, False),
    ("onelogin", False, True), ("auth0-sha1", False, True),
    ("pingfederate", False, False),
])
def test_sign_in_with_each_product_shape(tmp_path, gate_factory, upstream, product, encrypt, sha1):
    idp, gate = run_product(tmp_path, gate_factory, upstream, product, encrypt, sha1)
    try:
        with requests.Session() as c:
            r = login(gate, c, "Alice@Example.com", groups="eng ops", start="/queries/7")
            assert r.status_code == 303, gate.errors()[-2000:]
            page = c.get(gate.url + "/queries/7")
            assert "Hello, alice@example.com" in page.text
            assert "groups: eng,ops" in page.text
        if encrypt:
            # The SP metadata announces the encryption key and what we accept.
            md = requests.get(gate.url + "/ssogate/metadata", timeout=5).text
            assert 'use="encryption"' in md
            assert "http://www.w3.org/2009/xmlenc11#rsa-oaep" in md
            assert "rsa-1_5" not in md
    finally:
        idp.stop()


@pytest.mark.parametrize("product", ["onelogin", "auth0-sha1"])
def test_sha1_products_are_refused_by_default_and_say_why(tmp_path, gate_factory, upstream, product):
    idp, gate = run_product(tmp_path, gate_factory, upstream, product, encrypt=False, sha1=False)
    try:
        with requests.Session() as c:
            r = login(gate, c, "alice@example.com")
            assert r.status_code == 403
        assert "rsa-sha1 is refused; set the IdP to RSA-SHA256, or [saml] allow_sha1 = true" in gate.errors()
        assert gate.metrics().get('ssogate_logins_failed_total{reason="weak_algorithm"}') == 1
    finally:
        idp.stop()


def test_encrypted_product_without_our_key_is_one_error_for_the_client(tmp_path, gate_factory, upstream):
    """ADFS encrypting to a certificate whose key ssogate does not have: the
    client sees the same page as for any refusal; the log says why."""
    port = free_port()
    _, other_cert = sp_encryption_keys(str(tmp_path))  # the IdP encrypts to this one...
    key_path, cert_path = (os.path.join(str(tmp_path), n) for n in ("mine.key", "mine.crt"))
    key, cert = fx.make_keypair("ssogate, the configured key")  # ...ssogate has this one
    with open(key_path, "wb") as f:
        f.write(key)
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as f:
        f.write(cert)
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port,
              extra_args=["--product", "adfs", "--encrypt-to", other_cert])
    try:
        gate = gate_factory([upstream.url], idp=idp, port=port,
                            extra={"saml": saml_settings("adfs", idp, key_path, cert_path)})
        with requests.Session() as c:
            refused = login(gate, c, "alice@example.com")
        assert refused.status_code == 403
        assert "decryption" not in refused.text.lower() and "EncryptedKey" not in refused.text
        assert "no sp_decryption_key unwraps the EncryptedKey" in gate.errors()
        assert gate.metrics().get('ssogate_logins_failed_total{reason="decryption"}') == 1
    finally:
        idp.stop()


def test_decryption_key_readable_by_others_is_refused_at_start(tmp_path):
    """Like sp_key: a private key other users can read does not load."""
    import subprocess
    from conftest import BIN
    key_path, cert_path = sp_encryption_keys(str(tmp_path))
    os.chmod(key_path, 0o644)
    _, idp_cert = fx.make_keypair("idp")
    md = os.path.join(str(tmp_path), "md.xml")
    with open(md, "wb") as f:
        f.write(fx.idp_metadata_xml(idp_cert))
    ini = os.path.join(str(tmp_path), "g.ini")
    with open(ini, "w") as f:
        f.write("[server]\npublic_url = http://sp.test\n[upstream]\nurl = http://127.0.0.1:9\n"
                "[headers]\njwt =\n[access]\nallowed_domains = example.com\n[session]\nsecret = %s\n[saml]\nidp_metadata = %s\n"
                "sp_decryption_key = %s\n" % ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=", md, key_path))
    r = subprocess.run([BIN, "--check", "-c", ini], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "sp_decryption_key" in r.stderr and "readable or writable by other users" in r.stderr


def test_check_warns_about_the_weak_algorithm_opt_ins(tmp_path):
    import subprocess
    from conftest import BIN
    key_path, cert_path = sp_encryption_keys(str(tmp_path))
    _, idp_cert = fx.make_keypair("idp")
    md = os.path.join(str(tmp_path), "md.xml")
    with open(md, "wb") as f:
        f.write(fx.idp_metadata_xml(idp_cert))
    ini = os.path.join(str(tmp_path), "g.ini")
    base = ("[server]\npublic_url = http://sp.test\n[upstream]\nurl = http://127.0.0.1:9\n"
            "[headers]\njwt =\n[access]\nallowed_domains = example.com\n[session]\nsecret = %s\n"
            "[saml]\nidp_metadata = %s\nsp_decryption_key = %s\nsp_decryption_cert = %s\n"
            % ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=", md, key_path, cert_path))
    for extra, warned in (("", False), ("allow_sha1 = true\nallow_rsa15_key_transport = true\n", True)):
        with open(ini, "w") as f:
            f.write(base + extra)
        r = subprocess.run([BIN, "--check", "-c", ini], capture_output=True, text=True, timeout=30)
        assert "decryption keys: 1" in r.stdout, r.stdout + r.stderr
        assert ("WARNING: [saml] allow_sha1 = true" in r.stdout) == warned
        assert ("WARNING: [saml] allow_rsa15_key_transport = true" in r.stdout) == warned


def test_decryption_settings_that_mean_nothing_are_refused(tmp_path):
    import subprocess
    from conftest import BIN
    _, cert_path = sp_encryption_keys(str(tmp_path))
    ini = os.path.join(str(tmp_path), "g.ini")
    for extra, key in (("sp_decryption_cert = %s\n" % cert_path, "sp_decryption_cert"),
                       ("allow_rsa15_key_transport = true\n", "allow_rsa15_key_transport")):
        with open(ini, "w") as f:
            f.write("[server]\npublic_url = http://sp.test\n[upstream]\nurl = http://127.0.0.1:9\n"
                    "[headers]\njwt =\n[access]\nallowed_domains = example.com\n[session]\n"
                    "secret = QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=\n[saml]\n" + extra)
        r = subprocess.run([BIN, "--check", "-c", ini], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and key in r.stderr, r.stderr
