"The same code path on a GPU: skipped on machines without CUDA (run them where one is lent)."
import pytest, torch
import fastcore.test as fct
from fastsom.all import som_dataloaders, som_learner, load_dataset, Som

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
X = load_dataset('digits')[0]

def fitted(device, **kw):
    learn = som_learner(som_dataloaders(X, valid_pct=0, device=device), map_size=(8, 9), seed=0, **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(5)
    return learn

def test_gpu_training_matches_cpu():
    gpu, cpu = fitted('cuda'), fitted('cpu')
    assert gpu.som.weight.device.type == 'cuda'
    fct.test_close(gpu.codebook(), cpu.codebook(), eps=1e-2)
    assert (gpu.bmus(X).index == cpu.bmus(X).index).float().mean() > 0.99

@pytest.mark.parametrize('init', ['pca', 'samples', 'random'])
def test_init_from_gpu_data(init):
    "Every initialisation takes data on the GPU and leaves the codebook there, as on the CPU."
    x = torch.tensor(X.values, dtype=torch.float32)
    som = Som(64, (8, 9)).cuda().init_weights(x.cuda(), init, seed=0)
    assert som.weight.device.type == 'cuda'
    fct.test_close(som.weight.cpu(), Som(64, (8, 9)).init_weights(x, init, seed=0).weight, eps=1e-4)

def test_tf32_search_agrees_with_float32_on_gpu():
    "With TF32 allowed, the GPU search re-ranks 8 candidates exactly: it agrees with the float32 search."
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100_000, 128, generator=gen).cuda()
    som = Som(128, (40, 40)).cuda()
    with torch.no_grad(): som.weight.copy_(0.5 * torch.randn(1600, 128, generator=gen))
    exact, before = som(x), torch.backends.cuda.matmul.fp32_precision
    try:
        torch.backends.cuda.matmul.fp32_precision = 'tf32'
        assert (som(x) == exact).float().mean().item() >= 0.999
    finally: torch.backends.cuda.matmul.fp32_precision = before

def test_one_batch_data_moves_to_gpu_once():
    "With one batch an epoch the data sits on the GPU; with mini-batches only the batches go there."
    whole, mini = som_dataloaders(X, device='cuda'), som_dataloaders(X, bs=256, device='cuda')
    assert whole.train.dataset.is_cuda and whole.valid.dataset.is_cuda
    assert not mini.train.dataset.is_cuda and mini.one_batch()[0].is_cuda

# The masked path (missing cells) on the GPU: torch's steps, against the CPU's.
import copy, math
import pandas as pd
from fastsom.loss import SomLoss
from fastsom.missing import masked_sqdist

from test_missing import GRIDS, with_gaps  # tests/ is on the path, as pytest puts it there

def loss_and_grad(som, bmu, x, update):
    som.weight.grad = None
    loss = SomLoss(som, update, mass_floor=0.5)(bmu, x)
    loss.backward()
    return loss.detach().cpu(), som.weight.grad.cpu()

@pytest.mark.parametrize('topology, toroidal', GRIDS)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_masked_search_and_loss_match_cpu(topology, toroidal, dtype):
    """Masked BMUs (1 and 3 best) and `SomLoss` (value and gradient, both updates, all units and a few rows) on CUDA equal the CPU's:
    float64 to 1e-10; float32 BMUs but for near-ties (99.9%), the loss and gradient (from the same BMUs) to 1e-4 relative and 1e-5
    absolute: about 10 times float32's own error here (CPU float32 against float64: at most 1e-7 relative in the loss, 8e-7 in a
    gradient entry of at most 3.7, for seeds 0-2 of this data on the rectangular and hexagonal toroidal maps)."""
    x = with_gaps(4000, 9, 0.2, seed=1, dtype=dtype)
    cpu = Som(9, (8, 10), topology, toroidal).to(dtype).init_weights(x, 'samples', seed=0)
    gpu = copy.deepcopy(cpu).cuda()
    xg = x.cuda()
    for k in (1, 3):
        a, b = cpu.bmus(x, k=k), gpu.bmus(xg, k=k).cpu()
        if dtype == torch.float64: fct.test_eq(b, a)
        else: assert (b == a).float().mean() > 0.999
    exact = masked_sqdist(x.double(), cpu.weight.detach().double()).argmin(1)
    if dtype == torch.float64: fct.test_eq(gpu.bmus(xg).cpu(), exact)
    tol = dict(rtol=0, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    for rows in (x, x[:30]):  # all units, and the units a batch of few rows hits
        bmu = cpu.bmus(rows)
        for update in ('batchmap', 'kohonen'):
            (la, ga), (lb, gb) = loss_and_grad(cpu, bmu, rows, update), loss_and_grad(gpu, bmu.cuda(), rows.cuda(), update)
            torch.testing.assert_close(lb, la, **tol); torch.testing.assert_close(gb, ga, **tol)
        torch.testing.assert_close(SomLoss(gpu, reduction='none')(bmu.cuda(), rows.cuda()).cpu(),
                                   SomLoss(cpu, reduction='none')(bmu, rows), **tol)

def test_masked_loss_under_deterministic_algorithms(monkeypatch):
    "The sums of the masked update (`index_add_`, `bincount` without weights) have deterministic CUDA kernels: no error, same bits twice."
    monkeypatch.setenv('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # what torch asks for deterministic cuBLAS products
    x = with_gaps(3000, 6, 0.2, seed=2, dtype=torch.float32).cuda()
    som = Som(6, (6, 6)).cuda().init_weights(x, 'samples', seed=0)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        runs = [loss_and_grad(som, som.bmus(x), x, 'batchmap') for _ in range(2)]
    finally: torch.use_deterministic_algorithms(before)
    fct.test_eq(runs[0][1], runs[1][1])

def fitted_with_gaps(device, data, **kw):
    learn = som_learner(som_dataloaders(data, valid_pct=0, seed=0, device=device, **kw), map_size=(6, 7), seed=0, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(4)
    return learn

@pytest.mark.parametrize('bs', [None, 256])
def test_training_with_gaps_matches_cpu(bs):
    "Training on rows with missing cells (one batch; mini-batches summed by `ExactBatchMap`) on CUDA ends close to the CPU's codebook."
    x = with_gaps(3000, 8, 0.2, seed=3, dtype=torch.float32)
    gpu, cpu = fitted_with_gaps('cuda', x, bs=bs), fitted_with_gaps('cpu', x, bs=bs)
    assert gpu.som.weight.device.type == 'cuda'
    fct.test_close(gpu.codebook(), cpu.codebook(), eps=1e-2)
    assert (gpu.bmus(x).index == cpu.bmus(x).index).float().mean() > 0.99

def test_table_file_with_gaps_on_gpu(tmp_path):
    "A CSV file with blank cells, read in blocks onto the GPU with one `ExactBatchMap` step an epoch, trains like the CPU."
    df = pd.DataFrame(with_gaps(3000, 5, 0.2, seed=4, dtype=torch.float32).numpy(), columns=list('abcde'))
    df.to_csv(tmp_path / 'gaps.csv', index=False)
    gpu, cpu = [fitted_with_gaps(d, tmp_path / 'gaps.csv', bs=256, folder=tmp_path) for d in ('cuda', 'cpu')]
    assert gpu.som.weight.device.type == 'cuda'
    fct.test_close(gpu.codebook(), cpu.codebook(), eps=1e-2)

def test_impute_on_gpu():
    "`impute` of a learner on CUDA keeps every present cell and fills each gap from its row's best unit, found over present cells."
    df = pd.DataFrame(with_gaps(2000, 6, 0.2, seed=5, dtype=torch.float32).numpy().astype('float64'), columns=[f'c{i}' for i in range(6)])
    learn = fitted_with_gaps('cuda', df)
    filled = learn.impute(df)
    fct.test_eq(list(filled.columns), list(df.columns)); fct.test_eq(filled.index, df.index); fct.test_eq(filled.dtypes, df.dtypes)
    present = df.notna().to_numpy()
    assert not filled.isna().to_numpy().any() and (filled.to_numpy()[present] == df.to_numpy()[present]).all()
    x, w = learn.dls.encode(df).cpu().double(), learn.codebook(decoded=False).double()
    best = masked_sqdist(x, w).argmin(1)  # the formula, on the CPU in float64
    agree = (learn.bmus(df).index == best).numpy()
    assert agree.mean() > 0.999
    expected = learn.dls.decode_df(learn.codebook(decoded=False)[best], index=df.index).to_numpy()
    gaps = ~present & agree[:, None]
    fct.test_close(filled.to_numpy()[gaps], expected[gaps], eps=1e-5)

@pytest.mark.parametrize('init', ['pca', 'samples', 'random'])
def test_init_from_gpu_data_with_gaps(init):
    "Every initialisation takes rows with missing cells on the GPU (column means fill them for the start only), as on the CPU."
    x = with_gaps(1000, 6, 0.2, seed=6, dtype=torch.float32)
    som = Som(6, (5, 6)).cuda().init_weights(x.cuda(), init, seed=0)
    assert som.weight.device.type == 'cuda' and not som.weight.isnan().any()
    fct.test_close(som.weight.cpu(), Som(6, (5, 6)).init_weights(x, init, seed=0).weight, eps=1e-4)

def test_rows_without_a_present_cell_named_on_gpu():
    x = with_gaps(3000, 5, 0.2, seed=7, dtype=torch.float32)
    x[[2500, 17]] = math.nan
    som = Som(5, (4, 4), block_bytes=4 * 16 * 100).cuda().init_weights(x.nan_to_num().cuda(), 'samples', seed=0)
    with pytest.raises(ValueError, match=r'2 rows with every feature missing \(first: row 17\)'): som.bmus(x.cuda())
