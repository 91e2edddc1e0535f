"Every notebook runs top to bottom: they are the documentation and the first layer of tests."
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_notebook

NBS = sorted(Path(__file__).parent.parent.joinpath('nbs').glob('*.ipynb'))

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook_runs(nb, monkeypatch):
    monkeypatch.chdir(nb.parent)
    ok, _ = run_notebook(nb, do_print=False)
    assert ok, f'{nb.name} failed'
