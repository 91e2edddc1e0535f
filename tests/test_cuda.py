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
