"The compiled row minimum of the built package: built once, cached, checked, and optional."
import pytest, torch
import fastcore.test as fct
import fastsom.native
from fastsom.native import build_library, native_first_lowest, FIRST_LOWEST_C

def randn(*shape, seed=0): return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

def test_no_compiler_means_no_kernel(tmp_path):
    fct.test_eq(build_library(FIRST_LOWEST_C, 'first_lowest', tmp_path, compiler='no-such-compiler'), None)
    fct.test_eq(list(tmp_path.iterdir()), [])

def test_broken_source_means_no_kernel(tmp_path):
    fct.test_eq(build_library(FIRST_LOWEST_C.replace('for (', 'for ((', 1), 'first_lowest', tmp_path), None)
    fct.test_eq(list(tmp_path.iterdir()), [])  # the failed build leaves nothing behind

def test_unwritable_cache_means_no_kernel(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    fct.test_eq(build_library(FIRST_LOWEST_C, 'first_lowest', blocker / 'cache'), None)

def test_no_home_folder_means_no_kernel(monkeypatch):
    def no_home(): raise RuntimeError('Could not determine home directory.')  # what `Path.home()` raises
    monkeypatch.setattr(fastsom.native, 'cache_folder', no_home)
    fct.test_eq(build_library(FIRST_LOWEST_C, 'first_lowest'), None)

def test_switched_off(monkeypatch):
    native_first_lowest.cache_clear()
    monkeypatch.setenv('FASTSOM_NATIVE', '0')
    try: fct.test_eq(native_first_lowest(), None)
    finally: native_first_lowest.cache_clear()

def test_a_wrong_kernel_is_refused(monkeypatch, tmp_path):
    "A kernel that disagrees with argmin (here: always column 0) is never used."
    if native_first_lowest() is None: pytest.skip('no C compiler here')
    native_first_lowest.cache_clear()
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))  # the wrong kernel's library stays out of the user's cache
    monkeypatch.setattr(fastsom.native, 'FIRST_LOWEST_C', FIRST_LOWEST_C.replace('out[r] = c;', 'out[r] = 0;'))
    try: fct.test_eq(native_first_lowest(), None)
    finally:
        monkeypatch.undo()
        native_first_lowest.cache_clear()

@pytest.mark.parametrize('rows,cols', [(0, 64), (1, 64), (1000, 64), (513, 129), (100, 10016)])
def test_kernel_is_argmin(rows, cols):
    f = native_first_lowest()
    if f is None: pytest.skip('no C compiler here')
    scores = randn(rows, cols)
    if rows > 3:
        scores[1, [cols - 1, 5]] = scores[2, [0, 1]] = -99.  # ties
        scores[3] = float('inf')
    fct.test_eq(f(scores), scores.argmin(1, keepdim=True))
