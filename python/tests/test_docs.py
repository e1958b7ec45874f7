# SPDX-License-Identifier: MIT
"""The Python examples in docs/python.md and README.md run as written."""
import pathlib
import re

import pytest

pytest.importorskip("torch")
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["docs/python.md", "README.md"])
def test_python_blocks_run(doc):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)
    assert blocks, f"{doc} has no python examples"
    for i, code in enumerate(blocks):
        exec(compile(code, f"{doc}[{i}]", "exec"), {})


def test_python_examples_run():
    import runpy
    for script in sorted((ROOT / "examples" / "python").glob("*.py")):
        runpy.run_path(str(script), run_name="__main__")
