"""Runs a task's containers the way an engine would, without one, for
tests/deploy/test_image_contract.py.  Not a container runtime: no image is
pulled; each "container" is the host's root file system seen through its own
overlay (so the image paths it writes, like /keys or /usr/local/bin/ssogate,
never touch the host), with the task's volumes bind-mounted at their
containerPath, its /etc/hosts, the user of the image or the task
(setpriv: uid, gid, no supplementary groups), exactly the environment given
and the entrypoint + command given.  Must run as root inside
`unshare -m -n --propagation private`: the mounts and the network (a
private loopback, so ports 8080/9090/5000/6379 are the task's own) vanish
with the namespace.

    unshare -m -n --propagation private python3 container_sim.py SPEC.json RESULT.json

SPEC: {"workdir": DIR, "hosts": {name: addr}, "services": [...], "containers": [...]}
  service:   {"name", "argv", "ready_url" or "ready_tcp"}          started on the host side, in the netns
  container: {"name", "user": "uid:gid", "argv", "env", "mounts": [{"source", "target", "readonly"}],
              "files": {path in container: host file to bind there},
              "wait": "exit" | URL (polled until 200),
              "probes": [{"url", "headers", "expect": status, "timeout": seconds}],
              "timeout": seconds}
Containers start in order; a container that waits for "exit" and exits
non-zero stops the start (like dependsOn SUCCESS); at the end the running
ones get SIGTERM in reverse order (like ECS's stop order) and their exit
codes are recorded.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def make_root(workdir, c, hosts):
    base = os.path.join(workdir, "rootfs-" + c["name"])
    upper, work, root = (os.path.join(base, d) for d in ("upper", "work", "root"))
    for d in (upper, work, root):
        os.makedirs(d, exist_ok=True)
    sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=/,upperdir=%s,workdir=%s" % (upper, work), root)
    for special in ("/dev", "/proc"):
        sh("mount", "--rbind", special, root + special)
    with open(root + "/etc/hosts", "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n")
        for name, addr in hosts.items():
            f.write("%s %s\n" % (addr, name))
    for m in c.get("mounts", []):
        target = root + m["target"]
        os.makedirs(target, exist_ok=True)
        sh("mount", "--bind", m["source"], target)
        if m.get("readonly"):
            sh("mount", "-o", "remount,bind,ro", target)
    for path, source in c.get("files", {}).items():
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
        sh("mount", "--bind", source, target)
    return root


def http_get(url, headers=None, timeout=2):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(20000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(20000).decode(errors="replace")


def wait_url(url, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if http_get(url)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wait_tcp(address, proc, timeout):
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def uid_of(pid):
    """The real uid of pid or of its first descendant running another program (tini's child)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        out["uid"] = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    children = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            children += [int(x) for x in f.read().split()]
    out["children"] = []
    for child in children:
        with open("/proc/%d/status" % child) as f:
            status = f.read()
        with open("/proc/%d/cmdline" % child, "rb") as f:
            cmd = f.read().split(b"\0")[0].decode()
        out["children"].append({"cmd": cmd, "uid": [l.split()[1:] for l in status.splitlines()
                                                     if l.startswith("Uid:")][0],
                                "groups": [l.split()[1:] for l in status.splitlines()
                                           if l.startswith("Groups:")][0]})
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    result = {"containers": {}, "services": {}}
    workdir = spec["workdir"]
    sh("ip", "link", "set", "lo", "up")
    started, services = [], []
    try:
        for s in spec.get("services", []):
            out = open(os.path.join(workdir, s["name"] + ".log"), "wb")
            p = subprocess.Popen(s["argv"], stdout=out, stderr=subprocess.STDOUT)
            services.append(p)
            if s.get("ready_url"):
                result["services"][s["name"]] = wait_url(s["ready_url"], p, 20)
            else:
                result["services"][s["name"]] = wait_tcp(s["ready_tcp"], p, 20)
        for c in spec["containers"]:
            root = make_root(workdir, c, spec.get("hosts", {}))
            uid, gid = c["user"].split(":")
            argv = ["chroot", root, "setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups",
                    "--", *c["argv"]]
            log = os.path.join(workdir, c["name"] + ".log")
            out = open(log, "wb")
            # cwd "/" of the image, no inherited variable: exactly c["env"].
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=c["env"], cwd="/")
            r = result["containers"][c["name"]] = {"log": log}
            timeout = c.get("timeout", 30)
            if c["wait"] == "exit":
                try:
                    r["exit"] = p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    r["exit"] = "timeout"
                if r["exit"] != 0:
                    break
                continue
            started.append((c, p, r))
            r["ready"] = wait_url(c["wait"], p, timeout)
            if not r["ready"]:
                r["exit"] = p.poll()
                break
            r["process"] = uid_of(p.pid)
            r["probes"] = {}
            for probe in c.get("probes", []):
                # Polled until it answers "expect" (readiness can follow
                # liveness by a moment: the store connects after start).
                deadline = time.monotonic() + probe.get("timeout", 0)
                while True:
                    try:
                        got = list(http_get(probe["url"], probe.get("headers")))
                    except OSError as e:
                        got = [None, str(e)]
                    if got[0] == probe.get("expect", got[0]) or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                r["probes"][probe["url"]] = got
            r["listening"] = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    finally:
        for c, p, r in reversed(started):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                t0 = time.monotonic()
                try:
                    r["stop_exit"] = p.wait(c.get("stop_timeout", 30))
                except subprocess.TimeoutExpired:
                    p.kill()
                    r["stop_exit"] = "killed"
                r["stop_seconds"] = round(time.monotonic() - t0, 2)
        for p in services:
            p.kill()
            p.wait()
        with open(sys.argv[2], "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
