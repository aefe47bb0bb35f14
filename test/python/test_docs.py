# SPDX-License-Identifier: Apache-2.0
"""The Sphinx documentation builds without warnings (-W)."""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "doc"


def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOC),
         str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


#: Pages with ``.. code-block:: python`` examples: complete programs (run in order, one
#: namespace per page, in a temporary folder).  Every page that has such blocks is listed
#: (checked below).
RUNNABLE_PAGES = ["tutorial.rst", "dmft.rst", "mlsolver.rst", "hdf5_scheme.rst"]


def test_every_page_with_python_blocks_is_run():
    pages = sorted(p.relative_to(DOC).as_posix() for p in DOC.rglob("*.rst")
                   if ".. code-block:: python" in p.read_text())
    assert pages == sorted(RUNNABLE_PAGES)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_doc_python_blocks_run(page, tmp_path, monkeypatch):
    text = (DOC / page).read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    assert blocks, f"no python code block found in {page}"
    monkeypatch.chdir(tmp_path)
    ns = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile("\n".join(ln[3:] for ln in block.splitlines()), f"doc/{page}", "exec"),
                 ns)
