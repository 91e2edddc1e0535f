"One training step of the built package against the written-out update rules and against MiniSom."
import numpy as np, pytest, torch
import fastcore.test as fct
from minisom import MiniSom
from fastsom.all import som_dataloaders, som_learner, Grid

GRIDS = [('rectangular', False), ('hexagonal', False), ('rectangular', True), ('hexagonal', True)]

def one_epoch(x, grid_kind, update, lr, sigma=1.7, map_size=(4, 6), seed=0):
    "Codebook before and after one exact-batch epoch (one step) of a learner on `x`."
    topology, toroidal = grid_kind
    dls = som_dataloaders(x, valid_pct=0, normalize=False, device='cpu')
    learn = som_learner(dls, map_size=map_size, topology=topology, toroidal=toroidal, init='samples',
                        sigma=sigma, sigma_end=sigma, update=update, lr=lr, seed=seed, metrics=[])
    w0 = learn.som.weight.detach().clone()
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    return learn, w0, learn.som.weight.detach().clone()

def neighbourhood(grid, w, x, sigma):
    "The full [N, M] gaussian neighbourhood table, from scratch in float64."
    bmu = ((x[:, None].double() - w[None].double()) ** 2).sum(-1).argmin(1)
    return torch.exp(-grid.dist2(torch.float64)[bmu] / (2 * sigma ** 2))

def data(n=300, d=5, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))

@pytest.mark.parametrize('grid_kind', GRIDS)
def test_batch_map_epoch_equals_formula(grid_kind):
    x = data()
    learn, w0, w1 = one_epoch(x, grid_kind, 'batchmap', lr=1.)
    h = neighbourhood(learn.som.grid, w0, x, 1.7)
    expected = (h.t() @ x.double()) / h.sum(0)[:, None]
    fct.test_close(w1.double(), expected, eps=1e-5)

@pytest.mark.parametrize('grid_kind', GRIDS)
def test_sgd_step_equals_kohonen_rule(grid_kind):
    x, lr = data(), 0.3
    learn, w0, w1 = one_epoch(x, grid_kind, 'kohonen', lr=lr)
    h = neighbourhood(learn.som.grid, w0, x, 1.7)
    xd, w0d = x.double(), w0.double()
    expected = w0d + lr / len(x) * (h[:, :, None] * (xd[:, None] - w0d[None])).sum(0)
    fct.test_close(w1.double(), expected, eps=1e-5)

@pytest.mark.parametrize('topology', ['rectangular', 'hexagonal'])
def test_batch_map_epoch_equals_minisom(topology):
    "MiniSom's train_batch_offline with learning rate 1 is one exact batch-map epoch."
    x = data(seed=1).numpy().astype(np.float64)
    height, width = 5, 4
    learn, w0, w1 = one_epoch(torch.tensor(x, dtype=torch.float32), (topology, False), 'batchmap', lr=1., map_size=(height, width))
    ms = MiniSom(width, height, x.shape[1], sigma=1.7, learning_rate=1., topology=topology, neighborhood_function='gaussian')
    # MiniSom indexes units [x, y] = [col, row]; give it our unit positions so that hexagonal rows are offset alike
    coords = Grid(height, width, topology).coords().numpy().reshape(height, width, 2)
    ms._xx, ms._yy = coords[..., 0], coords[..., 1]
    ms._weights = w0.double().numpy().reshape(height, width, -1).transpose(1, 0, 2).copy()
    ms.train_batch_offline(x, 1)
    theirs = torch.tensor(ms.get_weights().transpose(1, 0, 2).reshape(height * width, -1))
    fct.test_close(w1.double(), theirs, eps=1e-5)

def test_loss_sums_the_batch_once(monkeypatch):
    "`SomLoss` computes the per-unit sums of a batch once, for the value it reports and for the step's gradient."
    import fastsom.loss
    from fastsom.loss import SomLoss, sample_energy, som_energy
    from fastsom.som import Som
    calls = []
    real = fastsom.loss.unit_sums
    monkeypatch.setattr(fastsom.loss, 'unit_sums', lambda *a, **k: calls.append(1) or real(*a, **k))
    som = Som(5, (4, 6), sigma=1.7)
    x = data()
    som.init_weights(x, 'samples', seed=0)
    bmu, w = som(x), som.weight
    loss = SomLoss(som)(bmu, x)
    assert len(calls) == 1, calls
    fct.test_close(loss, sample_energy(x, w, bmu, som.neighborhood_table()).mean(), eps=1e-5)
    gw, = torch.autograd.grad(loss, w)
    ref, = torch.autograd.grad(som_energy(x, w, bmu, som.neighborhood_table(), per_unit=True), w)
    fct.test_close(gw, ref, eps=1e-5)
