"""docker/Dockerfile invariants that can be checked without a Docker engine
(none runs on this machine kind), and its build step run for real."""
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT, SANITIZED

DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")


def instructions():
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]


def stages():
    out = []
    for op, arg in instructions():
        if op == "FROM":
            out.append([])
        if out:
            out[-1].append((op, arg))
    return out


def test_base_images_are_pinned():
    froms = [arg.split()[0] for op, arg in instructions() if op == "FROM"]
    assert len(froms) >= 2, "multi-stage: build and runtime"
    for image in froms:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), image


def test_runtime_runs_as_non_root_with_exec_form_entrypoint():
    runtime = stages()[-1]
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = [arg for op, arg in runtime if op == "ENTRYPOINT"]
    assert entry and isinstance(json.loads(entry[-1]), list), "exec form keeps ssogate PID 1's child, signals reach it"
    cmd = [arg for op, arg in runtime if op == "CMD"]
    assert all(isinstance(json.loads(c), list) for c in cmd)
    exposed = " ".join(arg for op, arg in runtime if op == "EXPOSE").split()
    assert "8080" in exposed and "9090" in exposed


def test_no_secret_or_key_is_copied_in():
    for op, arg in instructions():
        if op in ("COPY", "ADD"):
            assert not re.search(r"\.key\b|\.pem\b|secret|dev-keys|\.env\b", arg), arg


def test_build_stage_uses_the_ci_build_script():
    build = stages()[0]
    runs = " ".join(arg for op, arg in build if op == "RUN")
    assert "scripts/install-deps --build" in runs
    assert "scripts/build" in runs


@pytest.mark.slow
@pytest.mark.skipif(SANITIZED, reason="builds its own release binary from the sources, never the "
                    "one under test: the plain run proves it, a sanitizer run would repeat it")
def test_the_image_build_stage_builds_from_what_it_copies(tmp_path):
    """Replays the build stage's COPY lines into an empty context, then its build."""
    import shutil
    context = tmp_path / "src"
    context.mkdir()
    for op, arg in stages()[0]:
        if op != "COPY":
            continue
        *sources, dest = arg.split()
        for src in sources:
            path = os.path.join(ROOT, src)
            into_dir = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
            target = context / dest / os.path.basename(src) if into_dir else context / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, target, dirs_exist_ok=True)
            else:
                shutil.copy(path, target)
    out = tmp_path / "image-build"
    built = subprocess.run([str(context / "scripts" / "build"), str(out), "--buildtype=release"],
                           capture_output=True, text=True, cwd=context, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    binary = out / "ssogate"
    assert os.access(binary, os.X_OK)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert version.stdout.startswith("ssogate ")
