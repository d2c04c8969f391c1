"""`make test` as a contributor without root runs it: it installs nothing with apt (a test that
needs a system tool skips, naming its package), and `.ci/run` installs those tools first."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_test_installs_nothing_with_apt_and_ci_installs_the_tools_first():
    # make -n prints the commands without running any (setup included).
    commands = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=60).stdout
    assert "pytest" in commands
    assert "apt-get" not in commands and "sudo" not in commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    [tools] = [line for line in ci if line.startswith("SYSTEM_TOOLS=(")]
    assert "valgrind" in tools.removeprefix("SYSTEM_TOOLS=(").rstrip(")").split()
    installs = next(i for i, line in enumerate(ci) if "apt-get install" in line)
    assert installs < ci.index("make test")
