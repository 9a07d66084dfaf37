"""Paths of the deployment files, the task_definition fixture, and the
integration suite's helpers (real ssogate, real upstream, free ports, process
cleanup) loaded under their own module name.  tests/deploy has no conftest.py
on purpose: a second module named "conftest" would shadow tests/integration's
(`from conftest import ...`) when both directories run in one session.  Test
modules import the fixtures they use from here."""
import importlib.util
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(ROOT, "docs", "deploy")
TERRAFORM = os.path.join(DEPLOY, "terraform")
TASK_DEFINITION = os.path.join(DEPLOY, "task-definition.json")

if "integration_support" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "integration_support", os.path.join(ROOT, "tests", "integration", "conftest.py"))
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["integration_support"] = _mod
    _spec.loader.exec_module(_mod)
it = sys.modules["integration_support"]


@pytest.fixture
def task_definition():
    with open(TASK_DEFINITION) as f:
        return json.load(f)
