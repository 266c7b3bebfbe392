import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def pytest_addoption(parser):
    parser.addoption("--root", default=None, help="a root the host role was applied to (check_baked_root.py)")


@pytest.fixture(scope="session")
def repo():
    return REPO
