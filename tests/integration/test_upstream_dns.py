"""Upstream names follow DNS: "Redash redeployed to new addresses".

The gate runs in its own mount namespace (unshare -m) where a private hosts
file is bind-mounted over /etc/hosts and "hosts: files" over
/etc/nsswitch.conf, so the test alone decides what the name resolves to and no
DNS server is asked.  glibc's files backend opens /etc/hosts on every lookup,
so rewriting the file in place (same inode: the bind mount follows the inode)
is what a Cloud Map record change looks like to getaddrinfo.  No code path in
the binary knows it is being tested.

Two upstreams (tests/upstream/app.py) listen on 127.0.0.7 and 127.0.0.8 on
the same port and say which one answered (/echo "server").
"""
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import SLOW, Upstream, free_port, wait_until

NAME = "redash.test"
A, B = "127.0.0.7", "127.0.0.8"
INTERVAL_S = 1  # [upstream] resolve_interval in these tests
SWITCH_S = INTERVAL_S + 5  # a rewrite is followed within this (wait_until scales it by SLOW)


def mount_namespace_works(tmp):
    """Root and unshare(CLONE_NEWNS) available (CI runs as root)."""
    if os.geteuid() != 0:
        return "needs root (unshare -m and mount --bind); CI runs as root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) not installed"
    probe = os.path.join(tmp, "hosts.probe")
    with open(probe, "w") as f:
        f.write("127.0.0.9 probe.test\n")
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        'mount --bind "$1" /etc/hosts && getent hosts probe.test', "sh", probe],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0 or "127.0.0.9" not in r.stdout:
        return "unshare -m / mount --bind failed here: %s" % (r.stderr.strip() or r.stdout)
    return None


class Names:
    """The private /etc/hosts the gate sees, rewritten in place."""

    def __init__(self, tmp):
        self.hosts = os.path.join(tmp, "hosts")
        self.nsswitch = os.path.join(tmp, "nsswitch.conf")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
        with open(self.nsswitch, "w") as f:
            f.write("hosts: files\n")
        self.launcher = ["unshare", "-m", "sh", "-c",
                         'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf '
                         '&& shift 2 && exec "$@"', "sh", self.hosts, self.nsswitch]

    def point(self, *addresses):
        """NAME resolves to addresses from the next lookup on (none: it does not resolve)."""
        text = "127.0.0.1 localhost\n" + "".join("%s %s\n" % (a, NAME) for a in addresses)
        ino = os.stat(self.hosts).st_ino
        with open(self.hosts, "r+") as f:
            f.write(text)
            f.truncate()
        assert os.stat(self.hosts).st_ino == ino  # the bind-mounted inode, not a new file


def port_free_on_both():
    for _ in range(50):
        port = free_port()
        try:
            for host in (A, B):
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on both %s and %s" % (A, B))


@pytest.fixture
def redeploy(tmp_path, gate_factory):
    """(names, upstreams by address, start_gate)."""
    why = mount_namespace_works(str(tmp_path))
    if why:
        pytest.skip(why)
    names = Names(str(tmp_path))
    port = port_free_on_both()
    ups = {A: Upstream(str(tmp_path), "redash-a", host=A, port=port),
           B: Upstream(str(tmp_path), "redash-b", host=B, port=port)}

    def start_gate(resolve_interval="%ds" % INTERVAL_S):
        return gate_factory(["http://%s:%d" % (NAME, port)], launcher=names.launcher,
                            extra={"upstream": {"resolve_interval": resolve_interval}})

    yield names, ups, start_gate
    for u in ups.values():
        u.stop()


def who(gate):
    """(status, the upstream address that answered or None)."""
    r = requests.get(gate.url + "/echo", timeout=10 * SLOW)
    return r.status_code, (r.json()["server"].split(":")[0] if r.status_code == 200 else None)


def upstream_check(gate):
    """/readyz's upstream verdict ("ok" or why not); the gates here have no IdP,
    so /readyz as a whole is 503 for that reason anyway."""
    return requests.get(gate.url + "/readyz", timeout=5).json()["checks"]["upstream"]


def wait_for_answers_from(gate, address, what):
    wait_until(lambda: who(gate) == (200, address), timeout=SWITCH_S, interval=0.1, what=what)


@pytest.mark.concurrency  # the resolver thread swaps sets under the workers
def test_requests_follow_a_redeploy_to_new_addresses(redeploy):
    names, ups, start_gate = redeploy
    names.point(A)
    gate = start_gate()
    assert [who(gate) for _ in range(10)] == [(200, A)] * 10

    # The redeploy: the name now points at the new task, the old one is gone.
    names.point(B)
    ups[A].stop()
    wait_for_answers_from(gate, B, "requests to reach the new address")
    after = [who(gate) for _ in range(30)]
    assert after == [(200, B)] * 30, "a request went elsewhere after the switch: %s" % after
    assert re.search(r"upstream redash\.test:\d+ now resolves to 127\.0\.0\.8 \(was 127\.0\.0\.7\)",
                     gate.errors())
    wait_until(lambda: upstream_check(gate) == "ok",
               timeout=SWITCH_S + 10, what="/readyz: upstream ok on the new address")


@pytest.mark.concurrency
def test_an_in_flight_request_keeps_its_address_across_a_swap(redeploy):
    names, ups, start_gate = redeploy
    names.point(A)
    gate = start_gate()
    slow = {}
    t = threading.Thread(target=lambda: slow.update(
        r=requests.get(gate.url + "/slow?s=%d" % min(5 * SLOW, 8), timeout=30 * SLOW)))
    t.start()
    wait_until(lambda: any(r["target"].startswith("/slow") for r in ups[A].requests_seen()),
               what="the slow request to reach 127.0.0.7")
    names.point(B)
    wait_for_answers_from(gate, B, "new requests to reach the new address")
    assert t.is_alive(), "the slow request ended before the swap: the test proves nothing"
    t.join(30 * SLOW)
    assert slow["r"].status_code == 200 and slow["r"].text == "slow done"
    assert not any(r["target"].startswith("/slow") for r in ups[B].requests_seen())


@pytest.mark.concurrency
def test_both_addresses_share_the_requests(redeploy):
    names, ups, start_gate = redeploy
    names.point(A)
    gate = start_gate()
    assert who(gate) == (200, A)
    names.point(A, B)  # scale-out: a second task registers
    wait_for_answers_from(gate, B, "the new address to get requests")
    seen = [who(gate) for _ in range(40)]
    assert all(status == 200 for status, _ in seen), seen
    counts = {a: sum(1 for _, x in seen if x == a) for a in (A, B)}
    assert counts[A] >= 10 and counts[B] >= 10, "not round-robin: %s" % counts

    names.point(B)  # scale-in: the first task leaves; it gets no new request
    wait_until(lambda: all(who(gate) == (200, B) for _ in range(6)), timeout=SWITCH_S,
               what="the removed address to get no more requests")
    before = len(ups[A].requests_seen())
    assert [who(gate) for _ in range(20)] == [(200, B)] * 20
    assert len(ups[A].requests_seen()) == before


def test_a_name_unresolved_at_start_is_picked_up_when_it_resolves(redeploy):
    names, ups, start_gate = redeploy  # NAME is not in the hosts file yet
    gate = start_gate()
    r = requests.get(gate.url + "/echo", timeout=5)
    assert r.status_code == 502
    assert re.search(r"upstream redash\.test:\d+ did not resolve: .*requests get 502", gate.errors())
    wait_until(lambda: any(e.get("status") == 502 and "did not resolve" in str(e.get("error", ""))
                           and e.get("reason") == "upstream_unresolved"
                           for e in gate.access_log()), what="the access log to say why")
    ready = requests.get(gate.url + "/readyz", timeout=5)
    assert ready.status_code == 503
    assert "upstream name redash.test did not resolve" in ready.json()["checks"]["upstream"]

    names.point(A)
    wait_for_answers_from(gate, A, "the first resolution to be picked up")
    # The resolver asks the prober for a fresh probe right after the swap.
    wait_until(lambda: upstream_check(gate) == "ok",
               timeout=SWITCH_S, what="/readyz: upstream ok once the name resolves")


def resolve_failures(gate):
    return gate.metrics().get("ssogate_upstream_resolve_failures_total", 0)


STALE_AFTER = 6  # failed re-resolutions in a row before /readyz says so (SG_UPSTREAM_STALE_FAILURES)


@pytest.mark.slow
def test_a_name_that_stops_resolving_keeps_its_last_addresses(redeploy):
    names, ups, start_gate = redeploy
    names.point(A)
    gate = start_gate()
    assert who(gate) == (200, A)
    assert resolve_failures(gate) == 0
    wait_until(lambda: upstream_check(gate) == "ok", what="/readyz: upstream ok")

    # The record is gone (a Cloud Map outage, a deleted service).  The first
    # failed attempt comes within one interval, the sixth 5 intervals later:
    # /readyz says ok, and the last good list serves, all that time; then it
    # says so (every poll from the change on is looked at, none is skipped).
    failing_from = time.monotonic()
    names.point()
    deadline = failing_from + (STALE_AFTER * INTERVAL_S + SWITCH_S) * SLOW
    polls = 0
    while True:
        check = upstream_check(gate)
        if check != "ok":
            break
        polls += 1
        assert who(gate) == (200, A)  # the last good list is kept
        assert time.monotonic() < deadline, "/readyz never said the name stopped resolving"
        time.sleep(0.1)
    stale_after = time.monotonic() - failing_from
    assert stale_after >= (STALE_AFTER - 1) * INTERVAL_S, \
        "/readyz said so after %.1f s, before %d failed attempts" % (stale_after, STALE_AFTER)
    assert polls >= 10, "too few looks at /readyz to say it stayed ok: %d" % polls
    assert "failed to resolve %d times in a row" % STALE_AFTER in check, check
    assert "still using its last 1 address" in check
    assert resolve_failures(gate) >= STALE_AFTER
    # Logged once for the change of state, not once per attempt.
    assert len(re.findall(r"redash\.test:\d+ did not resolve: .*keeping its last 1 address",
                          gate.errors())) == 1, gate.errors()
    assert who(gate) == (200, A)

    names.point(A)
    wait_until(lambda: "upstream redash.test:%d resolves again" % ups[A].port in gate.errors(),
               timeout=SWITCH_S, what="the name to resolve again")
    wait_until(lambda: upstream_check(gate) == "ok",
               timeout=SWITCH_S, what="/readyz: upstream ok again")
