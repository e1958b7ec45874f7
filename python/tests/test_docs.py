# SPDX-License-Identifier: MIT
"""The Python examples in docs/python.md, docs/speech.md and README.md run as written."""
import pathlib
import re

import pytest

pytest.importorskip("torch")
ROOT = pathlib.Path(__file__).resolve().parents[2]


CLIPS = pathlib.Path("/usr/share/pocketsphinx/test/data/librivox")


@pytest.mark.parametrize("doc", ["docs/python.md", "README.md", "docs/speech.md"])
def test_python_blocks_run(doc):
    if doc == "docs/speech.md" and not CLIPS.is_dir():
        pytest.skip("pocketsphinx-testdata is not installed")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)
    assert blocks, f"{doc} has no python examples"
    for i, code in enumerate(blocks):
        exec(compile(code, f"{doc}[{i}]", "exec"), {})


def test_python_examples_run():
    import runpy
    for script in sorted((ROOT / "examples" / "python").glob("*.py")):
        runpy.run_path(str(script), run_name="__main__")
