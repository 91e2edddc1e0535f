"The compiled row minimum of the built package: built at install time, checked against argmin, optional."
import os, subprocess, sys
import pytest, torch
import fastcore.test as fct
import fastsom.native
from fastsom.native import native_kernels, row_minimum, agrees_with_argmin, native_first_lowest

def randn(*shape, seed=0): return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

def test_built_with_the_package():
    "On x86-64 (gcc or clang) the install compiles the extension into the package, beside its modules."
    import platform
    if platform.machine() not in ('x86_64', 'AMD64'): pytest.skip("no kernels for this platform: torch's steps run")
    assert fastsom.native._native is not None, "fastsom._native is missing: run `pip install -e .` or `python setup.py build_ext --inplace`"
    assert os.path.dirname(fastsom.native._native.__file__) == os.path.dirname(fastsom.native.__file__)
    assert set(native_kernels()) <= {'avx512', 'avx2'} and native_kernels()

def test_switched_off(monkeypatch):
    native_first_lowest.cache_clear()
    monkeypatch.setenv('FASTSOM_NATIVE', '0')
    try: fct.test_eq(native_first_lowest(), None)
    finally: native_first_lowest.cache_clear()

def test_not_built_means_torch(monkeypatch):
    "Without the extension (no compiler at install time) there are no kernels, and the search uses torch's steps."
    native_first_lowest.cache_clear()
    monkeypatch.setattr(fastsom.native, '_native', None)
    try:
        fct.test_eq(native_kernels(), ())
        fct.test_eq(native_first_lowest(), None)
        fct.test_fail(lambda: row_minimum('avx2'), contains="unknown kernel 'avx2'")
    finally:
        monkeypatch.undo()
        native_first_lowest.cache_clear()

def test_a_wrong_kernel_is_refused(monkeypatch):
    "A kernel that disagrees with argmin (here: always column 0) is never used."
    fct.test_eq(agrees_with_argmin(lambda t, bias=None: torch.zeros(len(t), 1, dtype=torch.long)), False)
    native_first_lowest.cache_clear()
    monkeypatch.setattr(fastsom.native, 'native_kernels', lambda: ('avx2',))
    monkeypatch.setattr(fastsom.native, 'row_minimum', lambda: lambda t, bias=None: torch.zeros(len(t), 1, dtype=torch.long))
    try: fct.test_eq(native_first_lowest(), None)
    finally:
        monkeypatch.undo()
        native_first_lowest.cache_clear()

def kernels():
    return native_kernels() or [pytest.param(None, marks=pytest.mark.skip('fastsom was built without the extension'))]

@pytest.mark.parametrize('kernel', kernels())
@pytest.mark.parametrize('rows,cols', [(0, 64), (1, 1), (1, 64), (1000, 7), (1000, 64), (513, 129), (300, 900), (100, 10016)])
def test_kernel_is_argmin(kernel, rows, cols):
    "Ties, +-inf and NaN, with and without biases, on rows further apart than their length."
    f = row_minimum(kernel)
    scores, bias = randn(rows, cols + 5)[:, :cols], randn(cols, seed=1)
    if rows > 6:
        scores[1, [cols - 1, cols // 2]] = scores[2, [0, cols - 1]] = -99.  # ties
        scores[3] = float('inf')
        scores[4, cols // 3] = float('-inf')
        scores[5, [cols - 1, cols // 2]] = float('nan')
        scores[6] = float('nan')
    fct.test_eq(f(scores), scores.argmin(1, keepdim=True))
    fct.test_eq(f(scores, bias), (scores + bias).argmin(1, keepdim=True))
    ties = torch.randint(0, 3, (rows, cols), generator=torch.Generator().manual_seed(2)).float()
    fct.test_eq(f(ties), ties.argmin(1, keepdim=True))

@pytest.mark.parametrize('kernel', kernels())
def test_infinities_cancel_without_nan(kernel):
    "+inf and -inf in one row sum to NaN in the kernel's NaN check; the answer is still argmin's."
    scores = torch.zeros(2, 100)
    scores[0, [10, 90]] = torch.tensor([float('inf'), float('-inf')])
    scores[1, [3, 70]] = torch.tensor([float('-inf'), float('inf')])
    fct.test_eq(row_minimum(kernel)(scores), scores.argmin(1, keepdim=True))

def test_search_without_the_kernel_is_the_same():
    "A whole search in a fresh process with FASTSOM_NATIVE=0 finds the units the kernel finds."
    code = ("import torch; from fastsom.som import Som, native_search; from fastsom.native import native_first_lowest;"
            "g = torch.Generator().manual_seed(0); x = torch.randn(5000, 16, generator=g);"
            "som = Som(16, (30, 30)); som.weight.data = torch.randn(900, 16, generator=g); som.weight.data[-1] = som.weight.data[0];"
            "print(native_first_lowest() is not None, som(x).tolist())")
    runs = {}
    for flag in ('0', '1'):
        env = {**os.environ, 'FASTSOM_NATIVE': flag}
        out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout
        runs[flag] = out.split(' ', 1)
    fct.test_eq(runs['0'][0], 'False')
    if native_kernels(): fct.test_eq(runs['1'][0], 'True')
    fct.test_eq(runs['0'][1], runs['1'][1])

@pytest.mark.parametrize('version', fastsom.native.sums_versions() or ['none'])
@pytest.mark.parametrize('cols', [1, 15, 64, 70])
def test_unit_sums_are_index_add(version, cols):
    "Each version of the compiled per-unit sums gives index_add_'s sums bit for bit, in one thread or several."
    if version == 'none': pytest.skip('no C compiler here')
    from fastsom.native import unit_sums_kernel
    x = randn(3000, cols)
    x[randn(3000, cols, seed=1) > 0.8] = float('nan')
    x[5] = 1.  # a complete row among them
    slot = torch.randint(40, (3000,), generator=torch.Generator().manual_seed(2))
    x0, m = x.nan_to_num(), (~x.isnan()).float()
    s = cols / m.sum(1, keepdim=True)
    def by_slot(v): return torch.zeros(40, v.shape[1]).index_add_(0, slot, v)
    f = unit_sums_kernel(version)
    for threads in (1, 2, 3):
        count, sq, sums = f(x0, slot, 40, threads=threads)
        fct.test_eq(count, torch.bincount(slot, minlength=40)); fct.test_eq(sums, by_slot(x0))
        fct.test_close(sq / by_slot((x0 * x0).sum(1, keepdim=True))[:, 0], torch.ones(40), eps=1e-5)
        ssq, sums5 = f(x, slot, 40, masked=True, threads=threads)
        expected = torch.cat([by_slot(v) for v in (x0, m, x0 * x0, s * x0, s * m)], 1)
        torch.testing.assert_close(sums5, expected, rtol=0, atol=0, equal_nan=True)  # NaN: a unit with a row of no present cell
        ref = by_slot(s * (x0 * x0).sum(1, keepdim=True))[:, 0]
        torch.testing.assert_close(ssq, ref, rtol=1e-5, atol=0, equal_nan=True)
    fct.test_eq(fastsom.native.split_kernel(version)(x), torch.cat([x0, m], 1))
    for threads in (1, 2):
        assert f(x, slot, 40, threads=threads) is None  # the complete sums stop at a NaN cell
        inf = x0.clone(); inf[7, 0], inf[8, 0] = float('inf'), -float('inf')
        assert f(inf, slot, 40, threads=threads) is not None  # infinities are not missing cells

def test_unit_sums_refuse_a_unit_out_of_range():
    if not fastsom.native.sums_versions(): pytest.skip('no C compiler here')
    f = fastsom.native.unit_sums_kernel()
    with pytest.raises(ValueError, match=r'outside \[0, 4\)'): f(randn(10, 3), torch.arange(10), 4)
    with pytest.raises(ValueError, match=r'outside \[0, 4\)'): f(randn(10, 3), torch.arange(10), 4, threads=2)
