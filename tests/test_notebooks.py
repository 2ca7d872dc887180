"""Every notebook in notebooks/ runs top to bottom and is committed without outputs.

Each ``notebooks/*.ipynb`` is executed with nbclient in a kernel of this very interpreter (a
kernel spec written to a temporary folder at test time, so no user-level Jupyter install is
needed), from a working directory outside the repository, as an analyst who copied a notebook
would run it: notebooks find their data through the package, not the checkout. A failing cell
fails the test with that cell's source and traceback, and so does any warning that a glyph is
missing (Chinese drawn as boxes) or any MLflow notice in a cell's output. Each notebook's run
time is printed (shown with ``-s`` or ``-rA``); nothing asserts on wall-clock time.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from traitlets import default

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "recoverscore-tests"
CELL_TIMEOUT = 300  # seconds per cell
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOISE = re.compile(
    r"Glyph \d+ .* missing|no CJK font|INFO mlflow|Successfully registered model|already exists"
)


def _ids(path: Path) -> str:
    return path.name


@pytest.fixture(scope="module")
def kernel_manager_class(tmp_path_factory) -> type[AsyncKernelManager]:
    """A kernel manager that knows one kernel: ipykernel on this interpreter."""
    from ipykernel.kernelspec import write_kernel_spec

    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    write_kernel_spec(kernels / KERNEL_NAME, overrides={"display_name": "recoverscore tests"})
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    assert specs.get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable

    class Manager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _only_this_interpreter(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(kernels)])

    return Manager


def _failure(path: Path, nb: nbformat.NotebookNode, error: Exception) -> str:
    """Which cell failed, its source and its traceback, without terminal colour codes."""
    failed = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    ]
    where = f"cell {failed[0]}" if failed else "a cell"
    return f"{path.name}: {where} failed\n{_ANSI.sub('', str(error))}"


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_committed_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before "
        "committing (e.g. jupyter nbconvert --clear-output --inplace)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_top_to_bottom(path: Path, kernel_manager_class, tmp_path):
    nb = nbformat.read(path, as_version=4)
    before = set(NOTEBOOK_DIR.rglob("*"))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=kernel_manager_class,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        failure = _failure(path, nb, error)  # reported below, outside the kernel's traceback
    finally:
        print(f"\n{path.name}: executed in {time.perf_counter() - start:.1f} s")
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    left_behind = sorted(str(p.relative_to(ROOT)) for p in set(NOTEBOOK_DIR.rglob("*")) - before)
    assert not left_behind, f"{path.name} wrote files into the repository: {left_behind}"
    assert not list(tmp_path.iterdir()), f"{path.name} wrote into its working directory"
    noise = [
        (index, line)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
        for line in output.get("text", "").splitlines()
        if _NOISE.search(line)
    ]
    assert not noise, f"{path.name}: cell {noise[0][0]} printed {noise[0][1]!r}"
