"""/metrics says what /readyz says (ssogate_ready, and ssogate_ready_check per
check) and which build runs (ssogate_build_info), issue 24: the ALB probes
/healthz, so without these nothing records a task that is up but not ready,
nor which version a rolling deploy left running."""
import os
import subprocess
import sys

import requests

sys.path.insert(0, os.path.dirname(__file__))
from conftest import BIN, ROOT, Idp, free_port, wait_until  # noqa: E402

CHECKS = ("idp", "store", "upstream", "shutdown")


def ready_metrics(gate):
    m = gate.metrics()
    return m["ssogate_ready"], {c: m['ssogate_ready_check{check="%s"}' % c] for c in CHECKS}


def test_ready_gauge_follows_readyz(idp_gate):
    gate, _ = idp_gate
    wait_until(lambda: requests.get(gate.url + "/readyz", timeout=5).status_code == 200, what="ready")
    assert ready_metrics(gate) == (1, {c: 1 for c in CHECKS})


def test_an_unreachable_upstream_makes_ready_0_and_names_the_check(tmp_path, gate_factory):
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    try:
        gate = gate_factory(["http://127.0.0.1:%d" % free_port()], idp=idp, port=port)
        r = requests.get(gate.url + "/readyz", timeout=5)
        assert r.status_code == 503 and r.json()["checks"]["upstream"] != "ok"
        assert ready_metrics(gate) == (0, {"idp": 1, "store": 1, "upstream": 0, "shutdown": 1})
    finally:
        idp.stop()


def test_no_identity_provider_is_not_ready(gate):
    assert requests.get(gate.url + "/readyz", timeout=5).status_code == 503
    ready, checks = ready_metrics(gate)
    assert ready == 0 and checks["idp"] == 0


def test_build_info_names_the_version_and_commit(gate):
    text = requests.get("http://127.0.0.1:%d/metrics" % gate.metrics_port, timeout=5).text
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.split()[-1]
    lines = [l for l in text.splitlines() if l.startswith("ssogate_build_info")]
    assert len(lines) == 1, lines
    assert lines[0].startswith('ssogate_build_info{version="%s",commit="' % version) and lines[0].endswith("} 1")
    commit = lines[0].split('commit="')[1].split('"')[0]
    # git's short form (or -Dcommit's), "unknown" when the build knew none.
    assert commit == "unknown" or all(c in "0123456789abcdef" for c in commit) and len(commit) >= 7
    if commit != "unknown" and os.path.realpath(BIN).startswith(ROOT + os.sep):
        # Built from this tree: a commit of its history (HEAD when built).
        assert subprocess.run(["git", "-C", ROOT, "cat-file", "-e", commit + "^{commit}"]).returncode == 0
