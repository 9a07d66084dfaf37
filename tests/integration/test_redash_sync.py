"""Google names and groups inside Redash (issue 11 point 6): after a login the
real binary syncs the person's SAML display name and mapped groups into a
stand-in for Redash's admin API (tests/redash_api/server.py, built from
Redash's handlers), off the request path."""
import os
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, PY, ROOT, SLOW, Proc, free_port, login, wait_until

KEY = "Zq4rT8vN2mK7pL1xC9bW3hJ6fD5sA0gE8yU2iO4t"  # Redash's keys are 40 characters
GROUP_MAP = "eng=Engineers ops=Operations eng=Data%20Team nobody=default"


class RedashApi:
    def __init__(self, tmp, groups=("Engineers", "Operations", "Data Team", "Finance"), users=()):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        args = [PY, os.path.join(ROOT, "tests/redash_api/server.py"), "--listen",
                "127.0.0.1:%d" % self.port, "--api-key", KEY, "--non-admin-key", "notAnAdmin"]
        for g in groups:
            args += ["--group", g]
        for u in users:
            args += ["--user", u]
        self.proc = Proc(args, tmp, "redash-api")
        wait_until(lambda: requests.get(self.url + "/__test/state", timeout=1).ok, what="redash api")

    def log(self):
        return requests.get(self.url + "/__test/log", timeout=5).json()

    def writes(self):
        return [e for e in self.log() if e["method"] != "GET"]

    def user(self, email):
        state = requests.get(self.url + "/__test/state", timeout=5).json()
        names = {g["id"]: g["name"] for g in state["groups"]}
        for u in state["users"]:
            if u["email"] == email:
                return u["name"], sorted(names[g] for g in u["groups"])
        return None

    def add_user(self, email, name=None, groups=(), after=0, disabled=False):
        requests.post(self.url + "/__test/user", json={"email": email, "name": name, "groups": list(groups),
                                                      "after": after, "disabled": disabled},
                      timeout=5).raise_for_status()

    def fail(self, status):
        requests.post(self.url + "/__test/fail", json={"status": status}, timeout=5).raise_for_status()

    def delay(self, seconds):
        requests.post(self.url + "/__test/delay", json={"seconds": seconds}, timeout=5).raise_for_status()


def outcome(gate, name):
    return gate.metrics().get('ssogate_redash_syncs_total{outcome="%s"}' % name, 0)


def wait_outcome(gate, name, n=1, timeout=15.0):
    wait_until(lambda: outcome(gate, name) >= n, timeout=timeout, what="redash sync outcome " + name)


def sync_gate(tmp_path, gate_factory, upstream, api_url, more=None, **redash):
    from conftest import Idp
    port = free_port()
    idp = Idp(str(tmp_path), "http://127.0.0.1:%d" % port)
    settings = {"api_url": api_url, "api_key": KEY, "sync_names": "true", "sync_groups": "true",
                "group_map": GROUP_MAP, "timeout": "3s"}
    settings.update(redash)
    extra = {"redash": settings}
    extra.update(more or {})
    gate = gate_factory([upstream.url], idp=idp, port=port, extra=extra)
    return gate, idp


@pytest.fixture
def api(tmp_path):
    a = RedashApi(str(tmp_path))
    yield a
    a.proc.stop()


@pytest.fixture
def synced(tmp_path, gate_factory, upstream, api):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url)
    yield gate, api
    idp.stop()


def signed_in(gate, email, groups):
    with requests.Session() as c:
        r = login(gate, c, email, groups=groups)
        assert r.status_code == 303, r.text
        return r


def test_rename_add_remove_and_what_is_never_touched(synced):
    gate, api = synced
    # As Redash's JWT login makes it: name = email, the default group; plus a
    # mapped group they must leave and an unmapped one that stays.
    api.add_user("alice@example.com", groups=["Operations", "Finance"])
    signed_in(gate, "alice@example.com", "eng marketing")
    wait_outcome(gate, "synced")
    name, groups = api.user("alice@example.com")
    assert name == "Alice"  # the test IdP's displayName
    # eng -> Engineers and Data Team; Operations removed; Finance (unmapped)
    # and default (builtin, even though group_map names it) untouched.
    assert groups == ["Data Team", "Engineers", "Finance", "default"]
    writes = api.writes()
    assert sorted((w["method"], w["path"]) for w in writes) == [
        ("DELETE", "/api/groups/4/members/1"), ("POST", "/api/groups/3/members"),
        ("POST", "/api/groups/5/members"), ("POST", "/api/users/1")]
    assert all(e["authorization"] == "Key " + KEY for e in api.log())
    assert all("api_key" not in e["query"] for e in api.log())  # never in a URL
    errors = gate.errors()
    assert "redash sync of alice@example.com (user 1): renamed" in errors
    assert "builtin" in errors and "'default'" in errors


def test_second_login_with_the_same_attributes_makes_no_call(synced):
    gate, api = synced
    api.add_user("alice@example.com")
    signed_in(gate, "alice@example.com", "eng")
    wait_outcome(gate, "synced")
    calls = len(api.log())
    signed_in(gate, "alice@example.com", "eng")  # a new session, same name and groups
    wait_outcome(gate, "already_synced")
    assert len(api.log()) == calls
    # Changed groups are synced again at once.
    signed_in(gate, "alice@example.com", "eng ops")
    wait_outcome(gate, "synced", 2)
    assert api.user("alice@example.com")[1] == ["Data Team", "Engineers", "Operations", "default"]


def test_user_who_already_matches_gets_no_write_call(synced):
    gate, api = synced
    api.add_user("bob@example.com", name="Bob", groups=["Operations"])
    signed_in(gate, "bob@example.com", "ops")
    wait_outcome(gate, "unchanged")
    assert api.writes() == []
    assert outcome(gate, "synced") == 0


def test_unmapped_google_groups_change_nothing(synced):
    gate, api = synced
    api.add_user("carol@example.com", name="Carol", groups=["Finance"])
    signed_in(gate, "carol@example.com", "marketing sales Finance")
    wait_outcome(gate, "unchanged")
    assert api.writes() == []
    assert api.user("carol@example.com") == ("Carol", ["Finance", "default"])


def test_user_created_late_is_waited_for(synced):
    gate, api = synced
    # Redash creates the user on the first request the JWT reaches it with.
    api.add_user("dave@example.com", after=2.5)
    t0 = time.monotonic()
    signed_in(gate, "dave@example.com", "ops")
    assert outcome(gate, "synced") == 0
    wait_outcome(gate, "synced", timeout=20)
    assert time.monotonic() - t0 >= 2.5
    assert api.user("dave@example.com") == ("Dave", ["Operations", "default"])
    searches = [e for e in api.log() if e["path"] == "/api/users"]
    assert len(searches) >= 2  # it looked, waited, and looked again
    assert outcome(gate, "user_missing") == 0


def test_a_disabled_redash_user_is_left_alone_without_waiting(synced):
    gate, api = synced
    api.add_user("lee@example.com", groups=["Operations"], disabled=True)
    t0 = time.monotonic()
    signed_in(gate, "lee@example.com", "eng")
    wait_outcome(gate, "user_disabled")
    assert time.monotonic() - t0 < 5 * SLOW  # not the ~30 s wait for a user to appear
    assert api.writes() == []
    assert "the Redash user is disabled; left alone" in gate.errors()
    assert any("disabled=true" in e["query"] for e in api.log())


def test_redash_down_never_fails_the_login_and_is_counted(tmp_path, gate_factory, upstream):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, "http://127.0.0.1:%d" % free_port())
    r = signed_in(gate, "alice@example.com", "eng")
    assert r.headers["Location"] == "/"
    wait_outcome(gate, "failed")
    errors = gate.errors()
    assert "redash sync of alice@example.com failed (failed): GET /api/groups" in errors
    assert "retried at their next login" in errors
    # A failure is not remembered: the next login tries again.
    signed_in(gate, "alice@example.com", "eng")
    wait_outcome(gate, "failed", 2)
    assert outcome(gate, "already_synced") == 0
    assert KEY not in errors
    idp.stop()


@pytest.mark.concurrency
def test_parallel_logins_are_each_synced_once(tmp_path, gate_factory, upstream, api):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url,
                          more={"ratelimit": {"login": "1000/s", "burst": "1000"}})
    people = ["p%d@example.com" % i for i in range(12)]
    for i, email in enumerate(people):
        api.add_user(email, after=0.5 if i % 3 == 0 else 0)  # some made late
    api.delay(0.2)  # four sync threads, twelve people: the queue holds the rest
    results = []

    def one(email):
        with requests.Session() as c:
            results.append(login(gate, c, email, groups="eng" if email[1] in "02468" else "ops").status_code)

    threads = [threading.Thread(target=one, args=(e,)) for e in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [303] * len(people)
    wait_outcome(gate, "synced", len(people), timeout=60)
    for email in people:
        name, groups = api.user(email)
        assert name == email.split("@")[0].capitalize()
        assert ("Engineers" in groups) == (email[1] in "02468")
    renames = [w for w in api.writes() if w["path"].startswith("/api/users/")]
    assert len(renames) == len(people)  # once each
    idp.stop()


def test_redash_answering_errors_is_a_counted_failure_then_recovers(synced):
    gate, api = synced
    api.add_user("jack@example.com")
    api.fail(503)
    signed_in(gate, "jack@example.com", "eng")
    wait_outcome(gate, "failed")
    assert "GET /api/groups: HTTP 503" in gate.errors()
    assert api.user("jack@example.com")[0] == "jack@example.com"
    api.fail(0)
    signed_in(gate, "jack@example.com", "eng")  # the next login retries
    wait_outcome(gate, "synced")
    assert api.user("jack@example.com")[0] == "Jack"


def test_slow_redash_does_not_delay_the_login(tmp_path, gate_factory, upstream, api):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url, timeout="10s")
    api.add_user("erin@example.com")
    api.delay(1.5)  # each of the ~4 calls: a login that waited for the sync would take 6 s
    t0 = time.monotonic()
    signed_in(gate, "erin@example.com", "eng")
    acs_and_login = time.monotonic() - t0
    assert acs_and_login < 1.0 * SLOW, acs_and_login
    assert outcome(gate, "synced") == 0  # still running
    api.delay(0)  # proven; the calls still to come need not wait too
    wait_outcome(gate, "synced", timeout=30)
    assert api.user("erin@example.com")[0] == "Erin"
    idp.stop()


def test_sigterm_is_not_held_up_by_a_sync_in_progress(tmp_path, gate_factory, upstream, api):
    import signal
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url, timeout="60s")
    api.add_user("kim@example.com")
    api.delay(30)
    signed_in(gate, "kim@example.com", "eng")
    wait_until(lambda: len(api.log()) >= 1, what="the sync's first call")
    t0 = time.monotonic()
    assert gate.stop(signal.SIGTERM) == 0  # and LeakSanitizer found nothing
    assert time.monotonic() - t0 < 5 * SLOW
    idp.stop()


def test_a_mapped_group_redash_lacks_is_counted_not_created(tmp_path, gate_factory, upstream, api):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url, group_map="eng=Ghosts ops=Operations")
    api.add_user("fred@example.com", name="Fred")
    signed_in(gate, "fred@example.com", "eng ops")
    wait_outcome(gate, "synced")
    assert gate.metrics()["ssogate_redash_missing_groups_total"] == 1
    assert "group 'Ghosts' of [redash] group_map does not exist in Redash" in gate.errors()
    assert all(w["path"] != "/api/groups" for w in api.writes())  # no group was created
    assert api.user("fred@example.com")[1] == ["Operations", "default"]
    idp.stop()


@pytest.mark.parametrize("key,status", [("wrongKey", "HTTP 404"), ("notAnAdmin", "HTTP 403")])
def test_a_key_redash_refuses_is_a_counted_failure_with_the_reason(tmp_path, gate_factory, upstream, api,
                                                                   key, status):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url, api_key=key)
    api.add_user("gina@example.com")
    signed_in(gate, "gina@example.com", "eng")
    wait_outcome(gate, "failed")
    errors = gate.errors()
    assert "GET /api/groups: " + status in errors
    assert "is [redash] api_key an admin's key?" in errors or "the key valid?" in errors
    assert key not in errors
    assert api.writes() == []
    idp.stop()


def test_names_only_touches_no_group(tmp_path, gate_factory, upstream, api):
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url, sync_groups="false", group_map="")
    api.add_user("hank@example.com", groups=["Operations"])
    signed_in(gate, "hank@example.com", "eng")
    wait_outcome(gate, "synced")
    assert [(w["method"], w["path"]) for w in api.writes()] == [("POST", "/api/users/1")]
    assert api.user("hank@example.com") == ("Hank", ["Operations", "default"])
    assert all(e["path"] != "/api/groups" for e in api.log())
    idp.stop()


def test_the_api_key_never_reaches_the_log_or_check(synced, tmp_path):
    gate, api = synced
    api.add_user("ivy@example.com")
    signed_in(gate, "ivy@example.com", "eng")
    wait_outcome(gate, "synced")
    out = subprocess.run([BIN, "--check", "-c", gate.ini], capture_output=True, text=True, timeout=30)
    assert "redash" in out.stdout and "set (value hidden)" in out.stdout
    assert "group_map" in out.stdout and "eng=Engineers" in out.stdout
    for text in (out.stdout, out.stderr, gate.errors(), open(gate.proc.out_path).read()):
        assert KEY not in text


def check(gate, redash, env=None):
    settings = {k: dict(v) for k, v in gate.settings.items()}
    settings["saml"] = {"name_attribute": "displayName", "groups_attribute": "groups"}
    settings["redash"] = redash
    path = gate.ini + ".check.ini"
    with open(path, "w") as f:
        for section, values in settings.items():
            f.write("[%s]\n" % section)
            for k, v in values.items():
                f.write("%s = %s\n" % (k, v))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SSOGATE_")}
    environ.update(env or {})
    return subprocess.run([BIN, "--check", "-c", path], capture_output=True, text=True, timeout=30, env=environ)


def test_config_errors_name_the_problem(gate, tmp_path):
    out = check(gate, {"sync_names": "true", "sync_groups": "true"})
    assert out.returncode == 1
    assert "[redash] api_url" in out.stderr and "[redash] api_key or api_key_file: required" in out.stderr
    out = check(gate, {"api_url": "http://r:5000", "api_key": KEY, "sync_groups": "true",
                       "group_map": "eng=Engineers broken =x y="})
    assert out.returncode == 1
    assert "'broken' is not google-group=redash-group" in out.stderr
    assert "'=x'" in out.stderr and "'y='" in out.stderr
    assert "eng=Engineers" not in out.stderr
    out = check(gate, {"api_url": "http://r:5000/redash?x", "api_key": KEY, "sync_names": "true"})
    assert "[redash] api_url" in out.stderr and "query" in out.stderr
    out = check(gate, {"api_url": "http://r:5000", "sync_names": "true", "api_key": "sEcReT9 xYz"})
    assert "blank or control character" in out.stderr and "sEcReT9" not in out.stderr
    # Both spellings at once, from the file and the environment.
    out = check(gate, {"api_url": "http://r:5000", "sync_names": "true", "api_key_file": "/nonexistent"},
                env={"SSOGATE_REDASH_API_KEY": KEY})
    assert "set one of them, not both" in out.stderr and KEY not in out.stderr + out.stdout


def test_api_key_file_must_be_private(gate, tmp_path):
    path = str(tmp_path / "redash.key")
    with open(path, "w") as f:
        f.write(KEY + "\n")
    os.chmod(path, 0o644)
    out = check(gate, {"api_url": "http://r:5000", "sync_names": "true", "api_key_file": path})
    assert out.returncode == 1 and "readable or writable by other users" in out.stderr
    os.chmod(path, 0o600)
    out = check(gate, {"api_url": "http://r:5000", "sync_names": "true", "api_key_file": path})
    assert "[redash]" not in out.stderr, out.stderr
    assert "api_key" in out.stdout and path in out.stdout and KEY not in out.stdout


def test_login_without_email_is_skipped_with_a_log_line(tmp_path, gate_factory, upstream, api):
    """A username subject (issue 18.4) let in by a group: Redash's API finds
    users by email only, so the sync skips it, says so, and calls nothing."""
    gate, idp = sync_gate(tmp_path, gate_factory, upstream, api.url,
                          more={"access": {"allowed_domains": "", "allowed_groups": "eng"}})
    try:
        signed_in(gate, "jdoe", "eng")
        wait_until(lambda: "redash sync of jdoe skipped: the IdP sent no email" in gate.errors(),
                   what="the skip log line")
        assert api.log() == []
    finally:
        idp.stop()
