"""`ssogate --check-response` (issue 12, point 7) against every fixture of the
unit suite (tests/unit/saml_fixtures.py): the exit code is 0 exactly for the
cases the ACS accepts, and a refused case names its failure and has exactly
one FAIL line, for the rule that refused it.  Also the input forms (base64,
URL-encoded form body, XML), --at and --request-id."""
import base64
import concurrent.futures
import os
import subprocess
import urllib.parse

import pytest

import saml_fixtures as fx
from conftest import BIN, PY, ROOT, secret

# The rule line each failure name is reported on (the trace's rule names).
RULES = {
    "malformed": ("xml", "input", "lasso"),
    "status": ("status",),
    "signature": ("unique_ids", "response_signature", "assertion_signature", "lasso"),
    "weak_algorithm": ("response_signature", "assertion_signature"),
    "decryption": ("decryption", "name_id"),
    "assertions": ("decryption", "single_assertion", "assertion_signature"),
    "issuer": ("issuer",),
    "destination": ("destination",),
    "recipient": ("recipient",),
    "audience": ("audience",),
    "expired": ("subject_confirmation", "time_window"),
    "not_yet_valid": ("subject_confirmation", "time_window"),
    "subject": ("subject_confirmation", "name_id", "attributes"),
    "in_response_to": ("in_response_to",),
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fixtures"))
    subprocess.run([PY, os.path.join(ROOT, "tests/unit/saml_fixtures.py"), out], check=True, timeout=300)
    cases = []
    with open(os.path.join(out, "cases.txt")) as f:
        for line in f:
            name, expected, rid, allow, opts = line.split()
            cases.append((name, expected, None if rid == "-" else rid, allow == "1", opts))
    return out, cases


def write_config(out, name, allow, opts):
    saml = {"idp_metadata": os.path.join(out, "idp-metadata.xml"),
            "sp_entity_id": fx.SP_ENTITY_ID, "name_attribute": "displayName",
            "groups_attribute": "groups", "allow_idp_initiated": "true" if allow else "false"}
    for o in ([] if opts == "-" else opts.split(",")):
        if o == "dec":
            saml["sp_decryption_key"] = os.path.join(out, "sp-enc.key")
        elif o == "dec2":
            saml["sp_decryption_key"] = "%s %s" % (os.path.join(out, "sp-enc-old.key"),
                                                   os.path.join(out, "sp-enc.key"))
        elif o == "rsa15":
            saml["allow_rsa15_key_transport"] = "true"
        elif o == "sha1":
            saml["allow_sha1"] = "true"
        else:
            k, v = o.split("=", 1)
            saml[k + "_attribute"] = v
    ini = os.path.join(out, name + ".ini")
    with open(ini, "w") as f:
        f.write("[server]\npublic_url = %s\n[upstream]\nurl = http://127.0.0.1:9\n[headers]\njwt =\n"
                "[session]\nsecret = %s\n[access]\nallowed_domains = example.com\n[saml]\n"
                % (fx.SP_PUBLIC_URL, secret()))
        for k, v in saml.items():
            f.write("%s = %s\n" % (k, v))
    return ini


def check(capture, ini, *args):
    r = subprocess.run([BIN, "--check-response", capture, "-c", ini] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def test_every_unit_fixture(fixtures):
    out, cases = fixtures
    assert len(cases) > 80
    runs = []
    for name, expected, rid, allow, opts in cases:
        ini = write_config(out, name, allow, opts)
        args = ["--request-id", rid] if rid else []
        runs.append((os.path.join(out, name + ".b64"), ini, *args))
    # Each run is its own process and CPU-bound (0.4 s under ASan): two at a
    # time, one per core; the verdicts are checked in order below.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda run: check(*run), runs))
    checked = 0
    for (name, expected, rid, allow, opts), (rc, stdout, stderr) in zip(cases, results):
        fails = [l for l in stdout.splitlines() if l.startswith("  FAIL")]
        # Without --request-id, InResponseTo is reported, not compared: a
        # response the ACS refuses only for the missing state cookie passes.
        if name == "in_response_to_without_state":
            assert rc == 0, (name, stdout, stderr)
            assert "not checked (no --request-id)" in stdout
            continue
        if expected == "ok":
            assert rc == 0, (name, stdout, stderr)
            assert "VERDICT: accepted" in stdout and not fails, (name, stdout)
            assert "identity:" in stdout and "alice@example.com" in stdout
        else:
            assert rc == 1, (name, rc, stdout, stderr)
            assert "VERDICT: refused (%s)" % expected in stdout, (name, stdout)
            assert len(fails) == 1, (name, stdout)
            rule = fails[0].split()[1]
            assert rule in RULES[expected], (name, rule, stdout)
        checked += 1
    assert checked == len(cases) - 1


def test_input_forms_and_options(fixtures):
    out, _ = fixtures
    ini = write_config(out, "forms", False, "-")
    b64 = open(os.path.join(out, "happy_assertion_signed.b64")).read()
    forms = {
        "xml": base64.b64decode(b64).decode(),
        "urlencoded": "SAMLResponse=%s&RelayState=%%2Fqueries%%2F7" % urllib.parse.quote_plus(b64),
        "wrapped": "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + "\n",
    }
    for kind, text in forms.items():
        path = os.path.join(out, "capture-" + kind)
        with open(path, "w") as f:
            f.write(text)
        rc, stdout, stderr = check(path, ini, "--request-id", fx.REQUEST_ID)
        assert rc == 0, (kind, stdout, stderr)
        assert "in_response_to        '_req123' as expected" in stdout
    # Another request id: refused on that rule.
    rc, stdout, _ = check(os.path.join(out, "capture-xml"), ini, "--request-id", "_other")
    assert rc == 1 and "FAIL  in_response_to" in stdout
    # Without --request-id: reported, not checked.
    rc, stdout, _ = check(os.path.join(out, "capture-xml"), ini)
    assert rc == 0 and "'_req123' found, not checked" in stdout
    # --at: an expired capture checked at the time it was posted.
    expired = os.path.join(out, "expired.b64")
    rc, stdout, _ = check(expired, ini, "--request-id", fx.REQUEST_ID)
    assert rc == 1 and "VERDICT: refused (expired)" in stdout
    xml = base64.b64decode(open(expired).read()).decode()
    import re
    issued = re.search(r'IssueInstant="([^"]+)"', xml).group(1)
    import datetime
    t = datetime.datetime.strptime(issued, "%Y-%m-%dT%H:%M:%SZ") - datetime.timedelta(minutes=65)
    rc, stdout, _ = check(expired, ini, "--request-id", fx.REQUEST_ID,
                          "--at", t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert rc == 0, stdout
    assert "(--at, not the current time)" in stdout
    rc, _, stderr = check(expired, ini, "--at", "yesterday")
    assert rc == 2 and "RFC 3339" in stderr
    # Access rules: a domain that is not allowed is refused after the SAML rules.
    with open(ini) as f:
        text = f.read().replace("allowed_domains = example.com", "allowed_domains = other.example")
    with open(ini, "w") as f:
        f.write(text)
    rc, stdout, _ = check(os.path.join(out, "capture-xml"), ini, "--request-id", fx.REQUEST_ID)
    assert rc == 1 and "access: DENIED" in stdout and "VERDICT: refused (access)" in stdout


def test_never_touches_the_store(fixtures):
    """A Redis URL nobody listens on: --check-response does not care."""
    out, _ = fixtures
    ini = write_config(out, "store", False, "-")
    with open(ini, "a") as f:
        f.write("[store]\nurl = redis://127.0.0.1:9/0\n")
    rc, stdout, stderr = check(os.path.join(out, "happy_both_signed.b64"), ini, "--request-id", fx.REQUEST_ID)
    assert rc == 0, (stdout, stderr)
    assert "never reads or writes the store" in stdout


def test_capture_files_that_are_not_captures(fixtures, tmp_path):
    """A capture is read bounded: /dev/zero used to be read until memory ran out."""
    out, _ = fixtures
    ini = write_config(out, "bounded", False, "-")
    empty = tmp_path / "empty"
    empty.write_text("")
    for capture, reason in (("/dev/zero", "is larger than 4 MiB"), (str(empty), "is empty"),
                            (str(tmp_path), "is a directory"),
                            (str(tmp_path / "missing"), "No such file")):
        rc, stdout, stderr = check(capture, ini)
        assert rc == 2 and reason in stderr, (capture, stdout, stderr)


def test_auth0_signature_last_is_checked_by_lasso_too(fixtures):
    """Issue 18: Auth0's Response Signature is its last child.  Every rule
    and lasso pass, and the trace says lasso was shown that Signature after
    the Issuer (where its parser reads it; lasso verifies it there).  A
    response whose Signatures already sit there reaches lasso as posted."""
    out, _ = fixtures
    ini = write_config(out, "auth0", False, fx.AUTH0)
    rc, stdout, stderr = check(os.path.join(out, "auth0_signed_response_last.b64"), ini,
                               "--request-id", fx.REQUEST_ID)
    assert rc == 0, (stdout, stderr)
    lasso = [l for l in stdout.splitlines() if l.split()[1:2] == ["lasso"]]
    assert lasso == ["  pass  lasso                 lasso agrees (on the document with its "
                     "Signature after the Issuer, where lasso reads it)"], stdout
    assert "subject  auth0|5f7c8ec7c33c6c004bbafe82" in stdout
    assert "email    alice@example.com" in stdout
    rc, stdout, _ = check(os.path.join(out, "auth0_assertion_only.b64"), ini, "--request-id", fx.REQUEST_ID)
    assert rc == 0 and "  pass  lasso                 lasso agrees\n" in stdout, stdout
