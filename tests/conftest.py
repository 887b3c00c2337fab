import os

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs the real `dvc repro` in a temporary git repo (minutes)")
