"""Fixtures of tests/deploy: the integration suite's (re-exported from
deploy_support) and the JSON task definition."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_support import TASK_DEFINITION, it  # noqa: E402

no_process_outlives_its_test = it.no_process_outlives_its_test
upstream = it.upstream
gate_factory = it.gate_factory


@pytest.fixture
def task_definition():
    with open(TASK_DEFINITION) as f:
        return json.load(f)
