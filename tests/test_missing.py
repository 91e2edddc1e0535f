"Missing cells: the masked search and batch map against the formulas written out, in float64, on every kind of grid."
import math, pytest, torch
import fastcore.test as fct
from fastsom.all import Som, som_energy, som_dataloaders, som_learner
from fastsom.missing import masked_bmus, masked_energy, masked_sqdist

GRIDS = [('rectangular', False), ('rectangular', True), ('hexagonal', False), ('hexagonal', True)]

def with_gaps(n, d, share=0.25, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    gone = torch.rand(n, d, generator=g) < share
    gone[torch.arange(n), torch.randint(d, (n,), generator=g)] = False  # every row keeps a cell
    return x.masked_fill(gone, math.nan)

def formula_dist2(x, w):
    "D / n_i * sum over present k of (x_ik - w_jk)^2, from an [N, M, D] table (fine at test sizes)."
    m = ~torch.isnan(x)
    diff = torch.where(m[:, None], x[:, None] - w[None], 0.)
    return (diff ** 2).sum(2) * (x.shape[1] / m.sum(1, keepdim=True).to(x.dtype))

def formula_step(x, w, bmu, kernel):
    "The batch map for incomplete data: w_jk = sum_i h_ij m_ik x_ik / sum_i h_ij m_ik (where the mass is positive)."
    h, m = kernel[bmu], (~torch.isnan(x)).to(x.dtype)
    mass = h.t() @ m
    new = (h.t() @ torch.nan_to_num(x)) / mass
    return torch.where(mass > 0, new, w)

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_search_equals_formula(topology, toroidal):
    som = Som(6, (4, 6), topology, toroidal).double()
    som.init_weights(torch.randn(100, 6, dtype=torch.float64), 'random', seed=0)
    x = with_gaps(500, 6, seed=1)
    d2 = formula_dist2(x, som.weight.detach())
    fct.test_close(masked_sqdist(x, som.weight.detach()), d2, eps=1e-10)
    fct.test_eq(som.bmus(x), d2.argmin(1))
    fct.test_eq(som.bmus(x, k=2), d2.topk(2, largest=False).indices)

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_batch_map_equals_formula(topology, toroidal):
    som = Som(5, (4, 5), topology, toroidal, sigma=1.5).double()
    x = with_gaps(200, 5, seed=2)
    som.init_weights(x, 'pca')
    bmu, kernel = som.bmus(x), som.neighborhood_table().double()
    w = som.weight.detach().clone().requires_grad_()
    som_energy(x, w, bmu, kernel, per_unit=True).backward()
    fct.test_close(w.detach() - w.grad, formula_step(x, w.detach(), bmu, kernel), eps=1e-10)  # SGD, lr=1
    w = som.weight.detach().clone().requires_grad_()
    som_energy(x, w, bmu, kernel).backward()  # the Kohonen rule: 1/N instead of 1/mass
    h, m = kernel[bmu], (~torch.isnan(x)).double()
    fct.test_close(w.grad, -(h.t() @ torch.nan_to_num(x) - (h.t() @ m) * w.detach()) / len(x), eps=1e-10)

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_complete_data_is_the_dense_path(topology, toroidal):
    som = Som(4, (4, 4), topology, toroidal).double()
    x = torch.randn(300, 4, dtype=torch.float64)
    som.init_weights(x, 'random', seed=3)
    fct.test_eq(masked_bmus(som, x), som.bmus(x))
    fct.test_eq(masked_bmus(som, x, k=3), som.bmus(x, k=3))
    bmu, kernel = som.bmus(x), som.neighborhood_table().double()
    for per_unit in (False, True):
        w1, w2 = [som.weight.detach().clone().requires_grad_() for _ in range(2)]
        e1, e2 = masked_energy(x, w1, bmu, kernel, per_unit, 1.), som_energy(x, w2, bmu, kernel, per_unit, 1.)
        e1.backward(); e2.backward()
        fct.test_close(e1, e2, eps=1e-10); fct.test_close(w1.grad, w2.grad, eps=1e-10)

def test_exact_batch_map_over_mini_batches():
    "Mini-batches summed by `ExactBatchMap` step like one batch of all the rows, missing cells and all."
    x = with_gaps(400, 5, seed=4, dtype=torch.float32)
    learners = []
    for bs, accumulate in ((None, False), (64, True)):
        learn = som_learner(som_dataloaders(x, valid_pct=0, bs=bs, device='cpu'), map_size=(4, 4), seed=0,
                            accumulate=accumulate, mass_floor=0., metrics=[])
        with learn.no_bar(), learn.no_logging(): learn.fit(2)
        learners.append(learn)
    fct.test_close(learners[0].som.weight, learners[1].som.weight, eps=1e-4)

def test_quantization_error_over_present_cells():
    x = with_gaps(300, 4, seed=5, dtype=torch.float32)
    learn = som_learner(som_dataloaders(x, valid_pct=0, device='cpu'), map_size=(3, 3), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    qe, te = learn.validate()[1:]
    xe = learn.dls.train.dataset
    d2 = formula_dist2(xe.double(), learn.som.weight.detach().double())
    fct.test_close(qe, d2.min(1).values.sqrt().mean().item(), eps=1e-4)
    assert 0 <= te <= 1

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_matches_cpu():
    som = Som(8, (6, 6))
    x = with_gaps(2000, 8, seed=6, dtype=torch.float32)
    som.init_weights(x, 'pca')
    cpu = som.bmus(x)
    fct.test_eq(som.cuda().bmus(x.cuda()).cpu(), cpu)

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_reported_loss_is_the_per_sample_energy_over_present_cells(topology, toroidal):
    "The loss a user reads on rows with gaps: 1/2 sum_j h~_{b(i)j} D/n_i sum_present (x_ik - w_jk)^2, h~ rows summing to 1."
    from fastsom.loss import SomLoss
    som = Som(6, (4, 6), topology, toroidal).double()
    som.init_weights(torch.randn(100, 6, dtype=torch.float64), 'random', seed=0)
    x = with_gaps(200, 6, seed=2)
    bmu, kernel = som.bmus(x), som.neighborhood_table().double()
    h = kernel[bmu] / kernel[bmu].sum(1, keepdim=True)
    expected = 0.5 * (h * formula_dist2(x, som.weight.detach())).sum(1)
    fct.test_close(SomLoss(som, reduction='none')(bmu, x), expected, eps=1e-10)
    with torch.no_grad(): fct.test_close(SomLoss(som)(bmu, x), expected.mean(), eps=1e-10)
    small = x[:5]  # fewer samples than half the units: the hit-units path
    fct.test_close(SomLoss(som, reduction='none')(som.bmus(small), small), expected[:5], eps=1e-10)

@pytest.mark.parametrize('threads', [1, 2, 3])
def test_masked_search_in_threads_is_the_same(threads, monkeypatch):
    "The masked search runs its blocks on the threads the dense one uses (in turn in torch's team, or in threads), and finds the same units with any number of them."
    import fastsom.missing
    used = []
    def in_threads(work, items, n):
        used.append(n)
        return real(work, items, n)
    real = fastsom.missing.in_threads
    monkeypatch.setattr(fastsom.missing, 'in_threads', in_threads)
    som = Som(16, (12, 12))
    x = with_gaps(20_000, 16, seed=9, dtype=torch.float32)
    som.init_weights(x, 'samples', seed=0)
    som.block_bytes = 2**18  # several blocks
    expected = formula_dist2(x.double(), som.weight.detach().double()).argmin(1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = som.bmus(x)
    finally: torch.set_num_threads(before)
    team = som.compiled_pick() and fastsom.native.native_openmp()  # blocks in turn, each step on all threads
    assert used[-1] == (1 if team else threads), used
    assert (got == expected).float().mean() > 0.999  # float32 against float64: near-ties aside, the same units
    fct.test_eq(got, masked_bmus(som, x))  # one thread (the tests' default) or several: the same bits

def test_empty_rows_named_across_blocks():
    "Rows with nothing present are named in order whichever block a thread reaches first."
    x = with_gaps(5000, 6, seed=10, dtype=torch.float32)
    x[[4000, 123, 2500]] = math.nan
    som = Som(6, (4, 4), block_bytes=4 * 16 * 100)
    som.init_weights(x, 'samples', seed=0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(ValueError, match=r'3 rows with every feature missing \(first: row 123\)'): som.bmus(x)
    finally: torch.set_num_threads(before)

def test_has_missing_tells_inf_minus_inf_from_nan():
    from fastsom.missing import has_missing
    x = torch.zeros(100_000, 8)
    x[0, 0], x[1, 0] = math.inf, -math.inf  # a NaN sum without a NaN cell
    assert not has_missing(x)
    x[99_999, 7] = math.nan
    assert has_missing(x)

def test_unit_sums_native_and_torch_agree(monkeypatch):
    "The compiled sums and torch's `index_add_` give the same statistics, and so the same energy and step."
    import fastsom.missing
    from fastsom.missing import unit_sums, energy_from_sums
    x = with_gaps(3000, 7, seed=11, dtype=torch.float32)
    bmu = torch.randint(30, (3000,), generator=torch.Generator().manual_seed(12))
    w, k = torch.randn(30, 7, generator=torch.Generator().manual_seed(13)), Som(7, (5, 6)).neighborhood_table()
    for data in (x, x.nan_to_num()):
        native = unit_sums(data, bmu, 30)
        with monkeypatch.context() as m:
            m.setattr(fastsom.missing, 'native_unit_sums', lambda: None)
            torch_sums = unit_sums(data, bmu, 30)
        for a, b in zip(native[1:], torch_sums[1:]):
            if a is not None: fct.test_close(a, b, eps=1e-3)
        fct.test_close(energy_from_sums(native, w, k, True), energy_from_sums(torch_sums, w, k, True), eps=1e-3)

def test_training_on_one_or_two_threads_is_the_same():
    "Blocks in threads and the compiled sums shared among threads: the codebook after fit is the same bits on 1 and 2 threads."
    x = torch.randn(20_000, 16, generator=torch.Generator().manual_seed(14))
    holed = x.masked_fill(torch.rand(x.shape, generator=torch.Generator().manual_seed(15)) < 0.2, math.nan)
    before = torch.get_num_threads()
    try:
        for data in (x, holed):
            weights = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                learn = som_learner(som_dataloaders(data, valid_pct=0.01, seed=0, device='cpu'), map_size=(20, 20), metrics=[], seed=0)
                with learn.no_bar(), learn.no_logging(): learn.fit(2)
                weights.append(learn.som.weight.detach())
            fct.test_eq(weights[0], weights[1])
    finally: torch.set_num_threads(before)

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_masked_search_reranks_a_rounded_product(topology, toroidal, monkeypatch):
    "Where torch may round float32 products (TF32 on a GPU, as its user allows), the masked search re-ranks candidates over present cells."
    import fastsom.som
    monkeypatch.setattr(fastsom.som, 'matmul_rounds', lambda device: True)  # the GPU's branch, run here
    som = Som(6, (6, 8), topology, toroidal).double()
    x = with_gaps(2000, 6, seed=16)
    som.init_weights(x, 'samples', seed=0)
    d2 = formula_dist2(x, som.weight.detach())
    fct.test_eq(som.bmus(x), d2.argmin(1))
    fct.test_eq(som.bmus(x, k=3), d2.topk(3, largest=False).indices)
    small = som.float()  # float32 scores, re-ranked: the same units as float64 but for near-ties
    assert (small.bmus(x.float()) == d2.argmin(1)).float().mean() > 0.999

@pytest.mark.parametrize('topology, toroidal', GRIDS)
def test_torch_path_keeps_to_the_device(topology, toroidal):
    """The steps a GPU runs (the masked and dense block searches, the masked sums, energy and gradient) on the `meta` device: a tensor
    made on the CPU among them (a `torch.arange` without `device`, a CPU generator's draw) would be an error here, as on CUDA."""
    from fastsom.missing import gapped_search, unit_sums, energy_from_sums
    from fastsom.loss import mean_from_sums
    som = Som(5, (6, 8), topology, toroidal).to('meta')
    x, bmu = torch.empty(300, 5, device='meta'), torch.empty(300, dtype=torch.long, device='meta')
    for k in (1, 3):
        out = torch.empty(300, k, dtype=torch.long, device='meta')
        fct.test_eq(gapped_search(som, k)(x, out).device.type, 'meta')
        fct.test_eq(som.block_search(k)(x, out).device.type, 'meta')
    s = unit_sums(x, bmu, som.n_units, masked=True)  # all units: `torch.unique` of a few rows' units has no meta kernel (test_cuda.py runs it)
    assert all(t.device.type == 'meta' for t in s[2:])
    for per_unit in (True, False):
        som.weight.grad = None
        energy_from_sums(s, som.weight, som.neighborhood_table(), per_unit, 0.5).backward()
        fct.test_eq(som.weight.grad.device.type, 'meta')
    fct.test_eq(mean_from_sums(s, som.weight, som.neighborhood_table()).device.type, 'meta')


def test_split_is_right_whatever_the_default_dtype():
    "The compiled [x0, m] wrote float32 into a buffer of torch's default dtype: garbage under float64."
    from fastsom.native import native_split
    split = native_split()
    if split is None: pytest.skip('fastsom was built without its compiled kernels')
    x = torch.tensor([[1., float('nan'), 3.], [4., 5., float('nan')]])
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        got = split(x)
    finally: torch.set_default_dtype(old)
    fct.test_eq(got, torch.tensor([[1., 0., 3., 1., 0., 1.], [4., 5., 0., 1., 1., 0.]]))


def test_units_out_of_range_or_not_integers_are_refused():
    "A negative unit in a small batch silently took the last unit's kernel row; float units were truncated."
    from fastsom.loss import som_energy, sample_energy
    w, kernel = torch.randn(16, 3), torch.eye(16)
    x = torch.randn(4, 3)
    for bmu in (torch.tensor([0, 1, 2, -1]), torch.tensor([0, 1, 2, 16])):
        fct.test_fail(lambda: som_energy(x, w, bmu, kernel), contains='must lie in [0, 16)')
        fct.test_fail(lambda: sample_energy(x, w, bmu, kernel), contains='must lie in [0, 16)')
    fct.test_fail(lambda: som_energy(x, w, torch.tensor([0., 1.7, 2., 3.]), kernel), contains='integers')
    fct.test_fail(lambda: som_energy(x, w, torch.tensor([0, 1, 2]), kernel), contains='4 integers')


def test_rows_of_any_strides_give_torchs_sums():
    "Rows with a zero row stride (an expanded row) made the compiled sums raise where torch's path answers."
    from fastsom.loss import som_energy
    row = torch.randn(1, 3).expand(20, 3)
    w, kernel, bmu = torch.randn(16, 3), torch.eye(16), torch.arange(20) % 16
    fct.test_close(som_energy(row, w, bmu, kernel), som_energy(row.contiguous(), w, bmu, kernel), eps=1e-5)

def recorded(monkeypatch, name):
    "The rows of each block that `fastsom.missing.<name>`'s search is given, counted in a list the test reads."
    import fastsom.missing
    seen, real = [], getattr(fastsom.missing, name)
    def recording(som, k=1):
        made = real(som, k)
        inner = made[0] if isinstance(made, tuple) else made
        def search(xb, out):
            seen.append(len(xb))
            return inner(xb, out)
        return (search, *made[1:]) if isinstance(made, tuple) else search
    monkeypatch.setattr(fastsom.missing, name, recording)
    return seen

@pytest.fixture
def masked_blocks(monkeypatch):
    "The rows of each block of the masked search."
    return recorded(monkeypatch, 'masked_search')

@pytest.fixture
def gapped_rows(monkeypatch):
    "The rows of each block that go through the product of `[x0, m]`."
    return recorded(monkeypatch, 'gapped_search')

def compiled_masked_pick(on:bool, monkeypatch):
    "Leave the compiled masked pick on (skip where this processor has none), or switch it off: the product of `[x0, m]`."
    import fastsom.missing
    from fastsom.native import native_masked_first_lowest
    if on and native_masked_first_lowest() is None: pytest.skip('no compiled masked pick here (it needs AVX-512)')
    if not on: monkeypatch.setattr(fastsom.missing, 'native_masked_first_lowest', lambda: None)

def test_masked_blocks_count_their_split_and_reranking(masked_blocks):
    "A masked block's rows also hold `[x0, m]` (2 D numbers each: `x0` alone where the compiled masked pick takes the block) and, where torch rounds products, the re-ranked candidates."
    seen = masked_blocks
    som = Som(300, (20, 20))
    x = with_gaps(6000, 300, seed=5, dtype=torch.float32)
    som.init_weights(x, 'samples', seed=0)
    som.bmus(x)
    fct.test_eq(max(seen), 2**23 // ((400 + 2 * 300) * 4))
    try:
        torch.set_float32_matmul_precision('high')  # candidates re-ranked: torch's path
        seen.clear()
        som.bmus(x)
        fct.test_eq(max(seen), 2**23 // ((400 + 2 * 300 + 8 * 300) * 4))
    finally: torch.set_float32_matmul_precision('highest')

@pytest.mark.parametrize('share, compiled', [(0.02, True), (0.2, True), (0.35, False), (0.5, False), (0.65, False), (0.9, True)])
def test_blocks_with_many_gaps_take_the_product(share, compiled, gapped_rows, monkeypatch):
    "The compiled masked pick takes the blocks with at most `MASKED_PICK_SHARE` of their cells missing (or present); the others multiply out `[x0, m]`. Either way, the formula's units."
    compiled_masked_pick(True, monkeypatch)
    x = with_gaps(3000, 40, share, seed=14, dtype=torch.float32)
    som = Som(40, (9, 9)).init_weights(x.nan_to_num(), 'samples', seed=0)
    got = som.bmus(x)
    fct.test_eq(sum(gapped_rows), 0 if compiled else len(x))
    d2 = formula_dist2(x.double(), som.weight.detach().double())
    two = d2.topk(2, largest=False)
    clear = (two.values[:, 1] - two.values[:, 0]) > 1e-4 * two.values[:, 0]
    fct.test_eq(got[clear], two.indices[clear, 0])

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_rows_without_gaps_take_the_complete_search(dtype, gapped_rows, monkeypatch):
    "Without the compiled masked pick, only the rows that have a missing cell pay for the product of `[x0, m]`; every row's unit is the written-out formula's."
    compiled_masked_pick(False, monkeypatch)
    calls = gapped_rows
    x = with_gaps(5000, 6, 0., seed=11, dtype=dtype)
    x[[3, 4000], 2] = math.nan  # a gap in two rows, in two of the blocks
    som = Som(6, (7, 9), block_bytes=500 * 63 * x.element_size()).to(dtype).init_weights(x.nan_to_num(), 'samples', seed=0)
    step = som.block_rows(2 * 6)
    assert -(-len(x) // step) >= 8, step
    got = som.bmus(x)
    fct.test_eq(calls, [1, 1])  # the product of [x0, m] saw the two rows with a gap, nothing else
    expected = formula_dist2(x.double(), som.weight.detach().double()).argmin(1)
    agree = (got == expected).float().mean().item()
    assert agree == 1 if dtype == torch.float64 else agree > 0.999, agree
    x[[3, 4000], 2] = 0.
    x[:, 2] = torch.where(torch.arange(len(x)) % 3 == 0, math.nan, x[:, 2])  # a gap in every third row: every block mixed
    calls.clear()
    got = som.bmus(x)
    fct.test_eq(sum(calls), len(range(0, len(x), 3)))
    agree = (got == formula_dist2(x.double(), som.weight.detach().double()).argmin(1)).float().mean().item()
    assert agree == 1 if dtype == torch.float64 else agree > 0.999, agree

def test_compiled_masked_pick_is_the_formula(gapped_rows, monkeypatch):
    """With the compiled masked pick nothing goes through the product of `[x0, m]`; rows without a gap get the complete search's bits,
    rows with gaps the written-out formula's unit wherever the two lowest scores are further apart than float32's rounding."""
    compiled_masked_pick(True, monkeypatch)
    x = with_gaps(20_000, 64, 0.2, seed=12, dtype=torch.float32)
    x[::7] = x[::7].nan_to_num()  # rows without a gap
    x[5, 0], x[5, 1:] = 1., math.nan  # one present cell: the present features' squares alone
    som = Som(64, (30, 30)).init_weights(x.nan_to_num(), 'samples', seed=0)
    got = som.bmus(x)
    fct.test_eq(gapped_rows, [])
    fct.test_eq(got[::7], Som.bmus(som, x[::7].contiguous()))  # the dense search, bit for bit
    d2 = torch.cat([formula_dist2(xb, som.weight.detach().double()) for xb in x.double().split(1000)])  # [1000, M, D] at a time: 0.5 GB, not 9
    two = d2.topk(2, largest=False)
    clear = (two.values[:, 1] - two.values[:, 0]) > 1e-4 * two.values[:, 0]  # float32 rounds at about 1e-7 of a score
    assert clear.float().mean() > 0.99
    fct.test_eq(got[clear], two.indices[clear, 0])
    for threads in (2, 3):
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(threads)
            fct.test_eq(som.bmus(x), got)  # rows shared by any number of threads: the same bits
        finally: torch.set_num_threads(before)
    x[9] = math.nan
    fct.test_fail(lambda: som.bmus(x), contains='row 9')

def test_training_with_the_compiled_masked_pick(monkeypatch):
    "`learn.fit` on incomplete rows with the compiled masked pick and with the product of `[x0, m]`: the same map, to float32's rounding."
    from fastsom.native import native_masked_first_lowest
    import fastsom.missing
    if native_masked_first_lowest() is None: pytest.skip('no compiled masked pick here (it needs AVX-512)')
    x = with_gaps(4000, 16, 0.2, seed=13, dtype=torch.float32)
    def fitted():
        learn = som_learner(som_dataloaders(x, valid_pct=0, seed=0, device='cpu'), map_size=(8, 8), seed=0)
        with learn.no_bar(), learn.no_logging(): learn.fit(5)
        return learn
    compiled = fitted()
    monkeypatch.setattr(fastsom.missing, 'native_masked_first_lowest', lambda: None)
    product = fitted()
    torch.testing.assert_close(compiled.som.weight, product.som.weight, rtol=0, atol=1e-4)
    fct.test_eq(compiled.bmus(x), product.bmus(x))
    fct.test_close(compiled.recorder.values[-1], product.recorder.values[-1], eps=1e-5)

def in_kernel_order(scores, x, w):
    "`argmin` of each row's scores plus its squares, added as the masked pick adds them: its missing features' `-w^2` then `||w||^2`, or its present features' `w^2` where fewer are present; -1 for a row with none."
    sq, out = (w * w).t(), []
    for s, gone in zip(scores, x.isnan()):
        v, present = s.clone(), ~gone
        if not present.any(): out.append(-1); continue
        if gone.sum() <= present.sum():
            for d in gone.nonzero()[:, 0]: v = v + -sq[d]
            v = v + (w * w).sum(1)
        else:
            for d in present.nonzero()[:, 0]: v = v + sq[d]
        out.append(int(v.argmin()))  # the first NaN where the row holds one
    return torch.tensor(out)

def test_compiled_masked_pick_on_special_values():
    """The masked pick against `argmin` of its own sums: infinities, NaN and overflowing squares in the scores, in the codebook (a diverged map)
    and in the rows beside missing cells; ties; widths about whole vectors; rows further apart than their length; 1 to 3 threads."""
    from fastsom.native import native_masked_first_lowest, square_tables
    f = native_masked_first_lowest()
    if f is None: pytest.skip('no compiled masked pick here (it needs AVX-512)')
    g = torch.Generator().manual_seed(0)
    special = [math.inf, -math.inf, math.nan, 1e30, -3e38]
    def draw(n): return int(torch.randint(n, (), generator=g))
    for trial in range(150):
        rows, feats, units, where = 1 + draw(40), 1 + draw(40), (1, 15, 16, 64, 65, 130)[trial % 6], trial % 3
        x = torch.randint(-3, 4, (rows, feats + 3), generator=g).float()[:, :feats]  # rows 3 floats further apart than their length
        w = torch.randint(-3, 4, (units, feats), generator=g).float()
        x[torch.rand(rows, feats, generator=g) < 0.4] = math.nan
        for _ in range(1 + draw(4)):
            v = special[draw(len(special))]
            if where == 1: w[draw(units), draw(feats)] = v
            if where == 2: x[draw(rows), draw(feats)] = v if v == v else math.inf
        scores = torch.empty(rows, units + 5)[:, :units]
        scores[:] = x.nan_to_num(nan=0., posinf=math.inf, neginf=-math.inf) @ (-2 * w).t()
        if where == 0:
            for _ in range(1 + draw(4)): scores[draw(rows), draw(units)] = special[draw(len(special))]
        got = f(scores, x, square_tables(w), (w * w).sum(1), threads=1 + trial % 3)[:, 0]
        fct.test_eq(got, in_kernel_order(scores, x, w))

def test_without_avx512_the_product_of_x0_and_m(monkeypatch, gapped_rows):
    "On a processor without AVX-512 the getter hands out no masked pick, and the masked search multiplies out `[x0, m]`: the formula's units."
    import fastsom.native
    from fastsom.native import native_masked_first_lowest
    native_masked_first_lowest.cache_clear()
    monkeypatch.setattr(fastsom.native, 'native_kernels', lambda: ('avx2',))
    try:
        assert native_masked_first_lowest() is None
        x = with_gaps(300, 6, seed=14, dtype=torch.float32)
        som = Som(6, (5, 5)).init_weights(x.nan_to_num(), 'samples', seed=0)
        fct.test_eq(som.bmus(x), formula_dist2(x.double(), som.weight.detach().double()).argmin(1))
        fct.test_eq(sum(gapped_rows), int(x.isnan().any(1).sum()))  # the rows with a gap
    finally:
        monkeypatch.undo()
        native_masked_first_lowest.cache_clear()
