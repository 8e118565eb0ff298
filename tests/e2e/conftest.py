"""The end-to-end tier: every test here runs the real `nst` CLI in subprocesses, so all are `slow`."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
