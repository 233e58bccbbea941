"""The Makefile's Debian packages: `make run` installs what running needs, `make test` what the tests need too."""

from __future__ import annotations

import re
import subprocess

from live_server import REPO, clean_env

APT_LIST = re.compile(r"for p in ([^;]*); do dpkg-query")
TEST_ONLY = {"nginx", "chromium"}


def apt_packages(target: str) -> set[str]:
    """Every package `make TARGET` would check for on a fresh machine (make -n -B: printed, nothing run)."""
    env = {k: v for k, v in clean_env().items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "-n", "-B", target], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lists = APT_LIST.findall(done.stdout)
    assert lists, done.stdout
    return {package for listed in lists for package in listed.split()}


def test_make_run_installs_no_test_tools_and_make_test_installs_them():
    run, test = apt_packages("run"), apt_packages("test")
    assert {"build-essential", "libsqlite3-dev", "libev-dev", "python3-venv"} <= run
    assert not run & TEST_ONLY, run & TEST_ONLY
    assert test == run | TEST_ONLY
