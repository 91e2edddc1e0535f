"The compiled row minimum of the built package: built at install time, checked against argmin, optional."
import os, subprocess, sys
import pandas as pd
import pytest, torch
import fastcore.test as fct
from functools import partial
import fastsom.native
from fastsom.native import native_kernels, row_minimum, agrees_with_argmin, native_first_lowest
from fastsom.all import Som, som_dataloaders, som_learner

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
@pytest.mark.parametrize('threads', [1, 2, 3, 8])
def test_kernel_is_argmin(kernel, rows, cols, threads):
    "Ties, +-inf and NaN, with and without biases, on rows further apart than their length, the rows shared by 1 to 8 threads (more than the cores)."
    f = partial(row_minimum(kernel), threads=threads)
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
    one = None
    for threads in (1, 2, 3, 8):  # 8: more threads than this machine's cores
        count, sq, sums = f(x0, slot, 40, threads=threads)
        fct.test_eq(count, torch.bincount(slot, minlength=40)); fct.test_eq(sums, by_slot(x0))
        fct.test_close(sq / by_slot((x0 * x0).sum(1, keepdim=True))[:, 0], torch.ones(40), eps=1e-5)
        ssq, sums5 = f(x, slot, 40, masked=True, threads=threads)
        expected = torch.cat([by_slot(v) for v in (x0, m, x0 * x0, s * x0, s * m)], 1)
        torch.testing.assert_close(sums5, expected, rtol=0, atol=0, equal_nan=True)  # NaN: a unit with a row of no present cell
        ref = by_slot(s * (x0 * x0).sum(1, keepdim=True))[:, 0]
        torch.testing.assert_close(ssq, ref, rtol=1e-5, atol=0, equal_nan=True)
        bits = [t.view(torch.int32) if t.is_floating_point() else t for t in (count, sq, sums, ssq, sums5)]
        if one is None: one = bits
        for a, b in zip(bits, one): fct.test_eq(a, b)  # the same bits for any number of threads
    for threads in (1, 2, 3, 8): fct.test_eq(fastsom.native.split_kernel(version)(x, threads), torch.cat([x0, m], 1))
    for threads in (1, 2):
        assert f(x, slot, 40, threads=threads) is None  # the complete sums stop at a NaN cell
        inf = x0.clone(); inf[7, 0], inf[8, 0] = float('inf'), -float('inf')
        assert f(inf, slot, 40, threads=threads) is not None  # infinities are not missing cells

def test_threads_must_be_positive():
    if not fastsom.native.sums_versions(): pytest.skip('no C compiler here')
    x, slot = randn(10, 3), torch.zeros(10, dtype=torch.long)
    for call in (lambda: row_minimum()(x, threads=0), lambda: fastsom.native.unit_sums_kernel()(x, slot, 4, threads=0),
                 lambda: fastsom.native.split_kernel()(x, 0)):
        with pytest.raises(ValueError, match='threads must be at least 1, got 0'): call()

def run_in_group(code:str, timeout:float=120):
    "Exit status and output words of `python -c code`; on a hang, it and the processes it forked are killed and the test fails."
    import signal
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try: out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL); proc.communicate()
        pytest.fail(f'hung for {timeout} s')
    return proc.returncode, out.split() if proc.returncode == 0 else err[-2000:]

def test_a_large_thread_count_starts_no_idle_threads():
    "A thread count far above the work (here 2**31 - 1 for 10 rows and 4 units) gives the one-thread answer, the masked pick's too; it crashed OpenMP asking for that many threads."
    if not fastsom.native.sums_versions(): pytest.skip('no C compiler here')
    code = ("import torch, fastsom.native as n; g = torch.Generator().manual_seed(0); x = torch.randn(10, 5, generator=g); "
            "xm = x.clone(); xm[::3, 1] = float('nan'); slot = torch.arange(10) % 4; big = 2**31 - 1; "
            "same = lambda a, b: all(torch.equal(u, v) for u, v in zip(a, b)); f = n.unit_sums_kernel(); "
            "print(torch.equal(n.row_minimum()(x, threads=big), x.argmin(1, keepdim=True)) if n.native_kernels() else True, "
            "torch.equal(n.split_kernel()(xm, big), n.split_kernel()(xm)), same(f(x, slot, 4, threads=big), f(x, slot, 4)), "
            "same(f(xm, slot, 4, masked=True, threads=big), f(xm, slot, 4, masked=True)), "
            "(lambda mp, w: torch.equal(mp(xm.nan_to_num() @ (-2 * w).t(), xm, n.square_tables(w), (w * w).sum(1), threads=big), "
            "mp(xm.nan_to_num() @ (-2 * w).t(), xm, n.square_tables(w), (w * w).sum(1))))(n.masked_pick_kernel(), x[:4]) "
            "if 'avx512' in n.native_kernels() else True)")
    fct.test_eq(run_in_group(code), (0, ['True'] * 5))

FORKED_WORKERS = """
import torch
from torch.utils.data import DataLoader, Dataset
from fastsom.all import Som
from fastsom.missing import masked_bmus
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
x = torch.randn(8000, 8, generator=g); xm = x.clone(); xm[::5, 2] = float('nan')
som = Som(8, (20, 20)); som.init_weights(x, 'samples', seed=0)
ref, refm = som.bmus(x), masked_bmus(som, xm)  # the parent's team of two threads is started
class Blocks(Dataset):
    def __len__(self): return 8
    def __getitem__(self, i): return som.bmus(x[i * 1000:(i + 1) * 1000]), masked_bmus(som, xm[i * 1000:(i + 1) * 1000])
found = list(DataLoader(Blocks(), batch_size=None, num_workers=2, multiprocessing_context='fork'))
print(torch.equal(torch.cat([b for b, _ in found]), ref), torch.equal(torch.cat([m for _, m in found]), refm),
      torch.equal(som.bmus(x), ref))  # and the parent's team still works
"""

def test_forked_dataloader_workers_search():
    "A DataLoader's forked workers (on one thread, as PyTorch sets them) search after the parent's team ran: no hang, the same units."
    import platform
    if platform.system() != 'Linux': pytest.skip('fork is the default start method on Linux')
    fct.test_eq(run_in_group(FORKED_WORKERS), (0, ['True'] * 3))

def test_openmp_is_torchs():
    "Built with OpenMP (gcc has it), the extension runs in the OpenMP runtime torch loaded: one libgomp in the process, so no second team spins."
    import platform
    if platform.system() != 'Linux' or fastsom.native._native is None: pytest.skip('checked where gcc builds the extension')
    assert fastsom.native.native_openmp(), 'fastsom._native was built without OpenMP'
    check = ("import torch, fastsom.native; print(*sorted({line.split()[-1] for line in open('/proc/self/maps') "
             "if 'libgomp' in line or 'libiomp' in line}), sep='\\n')")  # a fresh process: scikit-learn loads a libgomp of its own
    runtimes = subprocess.run([sys.executable, '-c', check], capture_output=True, text=True, check=True).stdout.split()
    fct.test_eq(runtimes, [os.path.join(os.path.dirname(torch.__file__), 'lib', 'libgomp.so.1')])

def test_builds_without_openmp(tmp_path):
    "A compiler that refuses -fopenmp (Apple's clang) still builds the extension, which then runs each call on one thread."
    import shutil, sysconfig
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastsom.native.__file__)))
    if shutil.which('gcc') is None: pytest.skip('no gcc here')
    shutil.copy(os.path.join(root, 'setup.py'), tmp_path)
    (tmp_path / 'fastsom').mkdir()
    shutil.copy(os.path.join(root, 'fastsom', '_native.c'), tmp_path / 'fastsom')
    cc = tmp_path / 'cc'
    cc.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec gcc "$@"\n')
    cc.chmod(0o755)
    env = dict(os.environ, CC=str(cc), LDSHARED=f'{cc} -shared')
    build = subprocess.run([sys.executable, 'setup.py', 'build_ext', '--inplace'], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    assert 'the compiler has no OpenMP' in build.stdout
    built, = (tmp_path / 'fastsom').glob('_native*.so')
    check = ("import importlib.util as u, torch; s = u.spec_from_file_location('fastsom._native', %r); n = u.module_from_spec(s); "
             "s.loader.exec_module(n); print(n.openmp(), 'plain' in n.sums_versions())" % str(built))
    run = subprocess.run([sys.executable, '-c', check], capture_output=True, text=True)
    fct.test_eq(run.stdout.split(), ['False', 'True'])

def test_unit_sums_refuse_a_unit_out_of_range():
    if not fastsom.native.sums_versions(): pytest.skip('no C compiler here')
    f = fastsom.native.unit_sums_kernel()
    with pytest.raises(ValueError, match=r'outside \[0, 4\)'): f(randn(10, 3), torch.arange(10), 4)
    with pytest.raises(ValueError, match=r'outside \[0, 4\)'): f(randn(10, 3), torch.arange(10), 4, threads=2)
    late = torch.arange(200) % 4; late[150] = 4  # after a row with a NaN cell, which stops the sums
    x = randn(200, 3); x[5, 1] = float('nan')
    for version in fastsom.native.sums_versions():
        for threads in (1, 2, 3):  # an error for any number of threads, not None (the masked sums asked for) on one
            with pytest.raises(ValueError, match=r'outside \[0, 4\)'): fastsom.native.unit_sums_kernel(version)(x, late, 4, threads=threads)

# Every branch between the compiled code and torch's steps, end to end: the same run with the kernels and without.
from contextlib import contextmanager
from fastsom.native import native_unit_sums, native_split, native_masked_first_lowest

@contextmanager
def torch_path():
    """Torch's steps everywhere, as a user gets them with `FASTSOM_NATIVE=0`: the switch the kernel getters all read.
    Patching one getter's name would miss the modules that imported it by name; a fresh process per run costs seconds.
    Their caches are cleared on the way in and out, so no choice leaks into other tests."""
    getters = (native_first_lowest, native_unit_sums, native_split, native_masked_first_lowest)
    for g in getters: g.cache_clear()
    with pytest.MonkeyPatch.context() as m:
        m.setenv('FASTSOM_NATIVE', '0')
        try:
            assert all(g() is None for g in getters)  # a comparison of the compiled code with itself would prove nothing
            yield
        finally:
            for g in getters: g.cache_clear()

def both_paths(run):
    """`run()` with the compiled kernels, then with torch's steps. The compiled masked pick adds each row's squares in another order
    than torch's product, so that units within float32's rounding of each other may differ: it is left out here (both runs multiply
    out `[x0, m]`) and checked against the written-out formula in tests/test_missing.py."""
    if native_first_lowest() is None or native_unit_sums() is None: pytest.skip('fastsom was built without the extension')
    import fastsom.missing
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fastsom.missing, 'native_masked_first_lowest', lambda: None)
        native = run()
    with torch_path(): return native, run()

from test_missing import GRIDS, with_gaps  # tests/ is on the path, as pytest puts it there

@pytest.mark.parametrize('topology, toroidal', GRIDS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('share', [0., 0.25])
def test_search_and_loss_without_the_kernels_are_the_same(topology, toroidal, dtype, share):
    """`Som.bmus` (1 and 2 best, over blocks) and `SomLoss` (both updates; all units, a batch of few rows, which sums per hit unit, and
    rows that are not contiguous) give the
    same bits with and without the compiled code: the same argmin of the same scores, sums added in the same order. The loss a user
    reads goes through the squared norms, which the kernel adds in another order: to 1e-6."""
    from fastsom.loss import SomLoss
    x = with_gaps(3000, 7, share, seed=1, dtype=dtype)
    wide = torch.cat([x, x[:, :3]], 1)[:, :7]  # the same rows, further apart than their length
    def run():
        som = Som(7, (8, 9), topology, toroidal, block_bytes=2**14).to(dtype).init_weights(x, 'samples', seed=0)  # blocks of 56 rows
        out = [som.bmus(x), som.bmus(x, k=2), som.bmus(wide)]
        for rows in (x, x[:20], wide):
            bmu = som.bmus(rows)
            for update in ('batchmap', 'kohonen'):
                som.weight.grad = None
                loss = SomLoss(som, update, mass_floor=0.5)(bmu, rows)
                loss.backward()
                out += [loss.detach(), som.weight.grad.clone()]
        return out
    native, torch_ = both_paths(run)
    for i, (a, b) in enumerate(zip(native, torch_)):
        if a.dim() == 0: fct.test_close(a, b, eps=1e-6 * b.abs().item())
        else: assert torch.equal(a, b), i

@pytest.mark.parametrize('topology, toroidal', GRIDS)
@pytest.mark.parametrize('share', [0., 0.25])
@pytest.mark.parametrize('bs', [None, 300])
def test_training_without_the_kernels_is_the_same(topology, toroidal, share, bs):
    "`learn.fit` (one batch, or mini-batches summed by `ExactBatchMap`) ends on the same codebook bits, and `impute` fills the same values."
    x = with_gaps(1500, 6, share, seed=2, dtype=torch.float32)
    def run():
        learn = som_learner(som_dataloaders(x, valid_pct=0, bs=bs, seed=0, device='cpu'), map_size=(6, 8), topology=topology,
                            toroidal=toroidal, accumulate=bs is not None, seed=0, metrics=[])
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        return learn.som.weight.detach().clone(), learn.impute(x) if share else x
    (w1, filled1), (w2, filled2) = both_paths(run)
    assert torch.equal(w1, w2)
    if share: pd.testing.assert_frame_equal(filled1, filled2)

def test_table_file_without_the_kernels_is_the_same(tmp_path):
    "A CSV file with blank cells, read in blocks with one `ExactBatchMap` step an epoch: the same codebook and the same filled table."
    import numpy as np
    df = pd.DataFrame(with_gaps(2000, 5, 0.2, seed=3, dtype=torch.float32).numpy(), columns=list('abcde'))
    df.to_csv(tmp_path / 'gaps.csv', index=False)
    def run():
        learn = som_learner(som_dataloaders(tmp_path / 'gaps.csv', valid_pct=0, bs=256, folder=tmp_path), map_size=(5, 6), seed=0, metrics=[])
        assert any(type(cb).__name__ == 'ExactBatchMap' for cb in learn.cbs)
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        return learn.som.weight.detach().clone(), learn.impute(df)
    (w1, filled1), (w2, filled2) = both_paths(run)
    assert torch.equal(w1, w2)
    pd.testing.assert_frame_equal(filled1, filled2)
    assert not filled1.isna().to_numpy().any() and np.array_equal(filled1.to_numpy()[df.notna().to_numpy()], df.to_numpy()[df.notna().to_numpy()])

@pytest.mark.parametrize('share', [0., 0.25])
def test_units_of_any_integer_type(share):
    "The sums take each row's unit as `index_add_` does, int32 as well as int64, with or without the compiled code."
    from fastsom.missing import unit_sums
    x, bmu = with_gaps(500, 4, share, seed=4, dtype=torch.float32), torch.randint(6, (500,), generator=torch.Generator().manual_seed(5))
    native, torch_ = both_paths(lambda: [unit_sums(x, b, 6) for b in (bmu, bmu.int())])
    for s in (*native, *torch_): fct.test_eq(s.sums, native[0].sums)

def test_complete_sums_asked_of_rows_with_gaps():
    "`masked=False` asks for the complete sums: NaN where a unit has a missing cell, with or without the compiled code."
    from fastsom.missing import unit_sums
    x, bmu = with_gaps(500, 4, 0.25, seed=6, dtype=torch.float32), torch.randint(6, (500,), generator=torch.Generator().manual_seed(7))
    native, torch_ = both_paths(lambda: unit_sums(x, bmu, 6, masked=False))
    fct.test_eq(native.count.shape, (6, 1)); assert native.sums.isnan().all()
    for a, b in zip(native[2:], torch_[2:]): torch.testing.assert_close(a, b, equal_nan=True)

def test_npy_file_without_the_kernels_is_the_same(tmp_path):
    "A .npy file of complete rows, read in blocks from disk with one `ExactBatchMap` step an epoch: the same codebook bits."
    import numpy as np
    np.save(tmp_path / 'rows.npy', with_gaps(2000, 5, 0., seed=8, dtype=torch.float32).numpy())
    def run():
        learn = som_learner(som_dataloaders(tmp_path / 'rows.npy', valid_pct=0, bs=256), map_size=(5, 6), seed=0, metrics=[])
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        return learn.som.weight.detach().clone()
    w1, w2 = both_paths(run)
    assert torch.equal(w1, w2)
