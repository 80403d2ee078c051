"""Install metadata: pyproject.toml and environment.yml name the same dependencies, and the science package
needs only its own (the book's tooling and its extra are never imported by it)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def name(requirement: str) -> str:
    return requirement.split("=")[0].split(">")[0].split("<")[0].strip()


def test_environment_yml_agrees_with_pyproject():
    wanted = set(PROJECT["dependencies"]) | {d for extra in PROJECT["optional-dependencies"].values() for d in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) - {"-e ."} == wanted
    assert "-e ." in pip
    assert len(pip) == len(set(pip))  # nothing listed twice
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=" + PROJECT["requires-python"].removeprefix(">=")


def test_binder_installs_this_package_with_the_book_and_the_cpu_torch_on_the_projects_python():
    lines = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-e .[book]"]
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-" + PROJECT["requires-python"].removeprefix(">=")


def test_submitit_belongs_to_the_book_extra_not_the_science_package():
    core = {name(d) for d in PROJECT["dependencies"]}
    book = {name(d) for d in PROJECT["optional-dependencies"]["book"]}
    assert "submitit" in book and "submitit" not in core
    assert not core & {"papermill", "jupyter-book", "plotly", "ipywidgets", "nbformat", "playwright"}


def test_installed_torch_is_the_pinned_one():
    pin = next(d for d in PROJECT["dependencies"] if name(d) == "torch")
    assert pin.startswith("torch==")
    assert torch.__version__.split("+")[0] == pin.removeprefix("torch==")


BLOCKED = ("oscbind_tools", "submitit", "papermill", "plotly", "ipywidgets", "IPython", "nbformat", "jupyter_book",
           "myst_nb", "sphinx", "playwright")

WITHOUT_EXTRAS = f"""
import importlib, pkgutil, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"blocked: {{name}}")

sys.meta_path.insert(0, Refuse())
import oscbind_lite
for module in pkgutil.iter_modules(oscbind_lite.__path__):
    if module.name == "__main__":  # runs the command line
        continue
    importlib.import_module("oscbind_lite." + module.name)
print("ok")
"""


def test_the_science_package_imports_without_the_tooling_or_the_book_extra():
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_both_packages_keep_the_projects_width_no_unused_name_and_modules_of_a_readable_size():
    """ruff with the project's settings (pyproject.toml: lines of at most 120 characters, no unused import or name),
    and no module of either package much over 450 lines."""
    ruff = Path(sys.executable).with_name("ruff")
    r = subprocess.run([str(ruff), "check", "oscbind_lite", "oscbind_tools"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for package in ("oscbind_lite", "oscbind_tools") for p in (ROOT / package).rglob("*.py")}
    assert max(sizes.values()) <= 480, {k: v for k, v in sizes.items() if v > 480}
