"Every Python block of the README runs as written (in a fresh folder, with fastsom.all imported as the quick start does)."
import re, time
from pathlib import Path
import numpy as np, pytest, torch
import matplotlib.pyplot as plt

README = Path(__file__).parent.parent / 'README.md'

def python_blocks() -> list[tuple[str, str]]:
    "The README's ```python blocks, each with the heading of its section."
    text, blocks, heading = README.read_text(), [], 'top'
    for m in re.finditer(r'^(#+ [^\n]*)$|^```python\n(.*?)^```', text, re.M | re.S):
        if m.group(1): heading = m.group(1).lstrip('# ').strip()
        else: blocks.append((heading, m.group(2)))
    return blocks

BLOCKS = python_blocks()

def test_the_readme_has_its_blocks():
    assert len(BLOCKS) >= 4 and 'Quick start' in [h for h, _ in BLOCKS]

SLOW = {'A SOM inside a deep network'}  # 100 epochs of a deep network: about 50 s on a busy 2-core machine

@pytest.mark.parametrize('heading,code', [pytest.param(h, c, marks=[pytest.mark.slow] if h in SLOW else []) for h, c in BLOCKS],
                         ids=[h for h, _ in BLOCKS])
def test_block_runs(heading, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if 'big.npy' in code:  # the file of "Data larger than memory": any 2-D numeric .npy will do
        np.save(tmp_path / 'big.npy', np.random.default_rng(0).normal(size=(20_000, 8)).astype(np.float32))
    namespace = {}
    exec('from fastsom.all import *', namespace)
    start = time.time()
    try: exec(compile(code, f'README.md ({heading})', 'exec'), namespace)
    finally: plt.close('all')
    print(f"{heading}: {time.time() - start:.1f} s")
