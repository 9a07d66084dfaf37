"""Paths of the deployment files and the integration suite's helpers (real
ssogate, real upstream, free ports, process cleanup), loaded under their own
module name so this directory's conftest never shadows tests/integration's."""
import importlib.util
import os
import sys

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
