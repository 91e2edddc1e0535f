"The deep SOM autoencoder: model, loss, learner factory, export, prototype plot, purity."
import tempfile
from pathlib import Path
import numpy as np, pytest, torch
import torch.nn.functional as F
import fastcore.test as fct
from fastai.learner import load_learner
from fastai.torch_core import set_seed
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from fastsom.data import load_dataset, som_dataloaders, SomDataLoader, SomDataLoaders
from fastsom.layers import Topography, ASSIGNS
from fastsom.models import DeepSom, DeepSomLoss, deep_som_learner, plot_prototypes, prototype_mosaic
from fastsom.metrics import unit_purity

@pytest.fixture(scope='module')
def digits():
    X, y = load_dataset('digits')
    return X.to_numpy(np.float32) / 16, y.to_numpy()

def small_learner(X, assign='hard', **kwargs):
    dls = som_dataloaders(X, valid_pct=0.2, bs=128, normalize=False, seed=0, device='cpu')
    return deep_som_learner(dls, map_size=(4, 5), latent_dim=4, hidden=(32,), assign=assign, seed=0, **kwargs)

def test_model_shapes_and_errors():
    model = DeepSom(10, latent_dim=3, hidden=(8, 6), map_size=(2, 3))
    recon, z = model(torch.randn(7, 10))
    fct.test_eq(recon.shape, (7, 10)); fct.test_eq(z.shape, (7, 3))
    fct.test_eq([m.out_features for m in model.encoder if hasattr(m, 'out_features')], [8, 6, 3])
    fct.test_eq([m.out_features for m in model.decoder if hasattr(m, 'out_features')], [6, 8, 10])
    fct.test_fail(lambda: DeepSom(10, latent_dim=3, topography=Topography(4)), contains='latent_dim 4 but the encoder gives 3')
    fct.test_fail(lambda: model(torch.randn(7, 9)), contains='expects 10 input features, got 9')
    fct.test_fail(lambda: model.topography(torch.randn(7, 4)), contains='expects latent codes of shape [N, 3]')
    fct.test_fail(lambda: DeepSomLoss(model.topography, gamma=-0.1), contains='gamma must be 0 or more')

def test_loss_is_reconstruction_plus_gamma_topographic():
    model = DeepSom(10, latent_dim=3, hidden=(8,), map_size=(2, 3), kernel_norm=False)
    x = torch.randn(12, 10)
    recon, z = model(x)
    k = torch.exp(-model.topography.grid.dist2() / (2 * model.topography.sigma ** 2))
    d = ((z[:, None] - model.topography.weight[None]) ** 2).sum(-1)
    topo = 0.5 * (k[d.argmin(1)] * d).sum() / 12
    fct.test_close(DeepSomLoss(model.topography, gamma=0.7)((recon, z), x), ((recon - x) ** 2).mean() + 0.7 * topo, eps=1e-5)

@pytest.mark.parametrize('assign', ASSIGNS)
def test_every_mode_trains_and_reaches_the_encoder(digits, assign):
    X, _ = digits
    learn = small_learner(X[:400], assign)
    xb, yb = learn.dls.one_batch()
    loss = learn.loss_func(learn.model(xb), yb)
    loss.backward()
    g = learn.model.encoder[0].weight.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    learn.model.zero_grad()
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    assert all(np.isfinite(v) for v in learn.recorder.values[-1])
    hps = learn.recorder.hps
    assert 'sigma' in hps and hps['sigma'][0] > hps['sigma'][-1]
    if assign == 'hard': assert 'temperature' not in hps
    else: fct.test_close(hps['temperature'][0], 1.); assert hps['temperature'][-1] < hps['temperature'][0]

def test_the_start_leaves_no_unit_dead(digits):
    X, _ = digits
    learn = small_learner(X)
    fct.test_eq(learn.topography.bmus(learn.encode(X)).unique().numel(), 20)

def test_seed_repeats_and_global_generator_is_untouched(digits):
    X, _ = digits
    torch.manual_seed(123); before = torch.rand(1)
    torch.manual_seed(123)
    a, b = small_learner(X), small_learner(X)
    fct.test_eq(torch.rand(1), before)                                   # the factory's seeding left the global stream alone
    fct.test_eq(a.topography.weight, b.topography.weight)
    fct.test_eq(a.model.encoder[0].weight, b.model.encoder[0].weight)

def test_bad_arguments(digits):
    X, _ = digits
    fct.test_fail(lambda: small_learner(X, temperature=0.), contains='temperature must be positive')
    fct.test_fail(lambda: small_learner(X, temperature_end=-1.), contains='temperature_end must be positive')
    fct.test_fail(lambda: small_learner(X, sigma_end=0.), contains='sigma_end must be positive')
    fct.test_fail(lambda: small_learner(X, sigma=0.), contains='sigma must be positive')
    fct.test_fail(lambda: small_learner(X, assign='argmin'), contains="unknown assign 'argmin'")
    learn = small_learner(X)
    fct.test_fail(lambda: learn.bmus(np.zeros((3, 10))), contains='new data has 10 features, expected 64')

def test_export_round_trip_and_get_preds(digits):
    X, _ = digits
    learn = small_learner(X[:300], 'straight_through')
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    (recon, z), targ = learn.get_preds()
    fct.test_eq(recon.shape, targ.shape); fct.test_eq(z.shape, (len(targ), 4))
    with tempfile.TemporaryDirectory() as d:
        learn.export(Path(d) / 'deep.pkl')
        learn2 = load_learner(Path(d) / 'deep.pkl')
    fct.test_eq(learn2.bmus(X[:50]).index, learn.bmus(X[:50]).index)
    fct.test_close(learn2.prototypes(), learn.prototypes())

def test_prototype_plot_is_laid_out_as_the_map(digits):
    X, _ = digits
    learn = small_learner(X[:300])
    protos = learn.prototypes()
    fct.test_eq(protos.shape, (20, 64))
    with torch.no_grad(): raw = learn.model.decoder(learn.topography.weight)
    fct.test_close(protos, raw, eps=1e-6)                                 # normalize=False: no decoding of standardisation
    m = prototype_mosaic(protos, (4, 5))
    fct.test_eq(m.shape, (4 * 9 - 1, 5 * 9 - 1))
    fct.test_close(m[9:17, 18:26], protos[1 * 5 + 2].reshape(8, 8).numpy())  # unit (row 1, col 2)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    fct.test_eq(plot_prototypes(learn, ax=ax), fig)
    fct.test_close(np.ma.filled(ax.images[0].get_array(), np.nan)[9:17, 18:26], m[9:17, 18:26])
    plt.close(fig)
    fct.test_fail(lambda: prototype_mosaic(protos, (4, 5), img_shape=(7, 9)), contains='does not hold 64 features')

def test_prototypes_decode_standardised_data(digits):
    X, _ = digits
    dls = som_dataloaders(X[:300] * 16, valid_pct=0.2, bs=64, seed=0, device='cpu')   # standardised pixels
    learn = deep_som_learner(dls, map_size=(2, 2), latent_dim=3, hidden=(16,), seed=0)
    with torch.no_grad(): raw = learn.model.decoder(learn.topography.weight)
    fct.test_close(learn.prototypes(), dls.decode(raw), eps=1e-4)
    fct.test_close(learn.prototypes(decoded=False), raw)

def test_learners_do_not_share_metrics(digits):
    "Two deep SOM learners get their own metric objects, so one's running sums never reach the other."
    X, _ = digits
    a, b = small_learner(X[:100]), small_learner(X[:100])
    assert not set(map(id, a.metrics)) & set(map(id, b.metrics))

def test_purity_against_a_brute_count():
    rng = np.random.default_rng(0)
    bmu, lab = rng.integers(0, 7, 200), rng.integers(0, 3, 200)
    brute = sum(max((lab[bmu == u] == c).sum() for c in range(3)) for u in range(7)) / 200
    fct.test_close(unit_purity(bmu, lab), brute)

@pytest.mark.slow
def test_hard_mode_on_digits_meets_the_quality_bounds(digits):
    "8 x 8 map, 100 epochs, seed 0, stratified 75 / 25 split: the numbers of scripts/deep_som_runs.py."
    X, y = digits
    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    set_seed(0)  # before the loaders: their shuffling is seeded from Python's `random` when they are made
    dls = SomDataLoaders(SomDataLoader(torch.tensor(Xtr), bs=64, shuffle=True), SomDataLoader(torch.tensor(Xte), bs=1024), device='cpu')
    learn = deep_som_learner(dls, map_size=(8, 8), seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                 # small matrices: one thread is several times faster on a shared CPU
    try:
        with learn.no_bar(), learn.no_logging(): learn.fit(100, 1e-3)
    finally: torch.set_num_threads(threads)
    b = learn.bmus(Xte).index.numpy()
    te = learn.recorder.values[-1][learn.recorder.metric_names.index('topographic_error') - 1]
    assert unit_purity(b, yte) >= 0.88 and normalized_mutual_info_score(yte, b) >= 0.62
    print(f"purity {unit_purity(b, yte):.3f} NMI {normalized_mutual_info_score(yte, b):.3f} units {len(np.unique(b))} TE {te:.3f}")
    # units used, measured with `python scripts/deep_som_runs.py --configs hard --seeds 0 1 2 3 4` (2026-11-30, this
    # machine, x86_64, 1 thread): 62, 60, 60, 64, 63 (mean 61.8, sd 1.8); an Intel machine gave 59 for seed 0.
    # A different processor rounds differently and the run drifts like another seed: the bound is mean - 3 sd.
    # Purity (0.898-0.938), NMI (0.662-0.684) and TE (0.080-0.107) keep their bounds, met by every seed.
    assert len(np.unique(b)) >= 56 and te <= 0.15, (len(np.unique(b)), te)

def test_plain_fastai_dataloaders_work_too(digits):
    from fastai.data.core import DataLoaders
    X, _ = digits
    ds = [(x, x) for x in torch.tensor(X[:256])]
    dls = DataLoaders.from_dsets(ds[:200], ds[200:], bs=50, device='cpu')
    learn = deep_som_learner(dls, map_size=(3, 3), latent_dim=3, hidden=(16,), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    fct.test_eq(learn.bmus(X[:10]).index.shape, (10,))
    fct.test_eq(learn.prototypes().shape, (9, 64))

def test_normalised_latent_space_decodes_units_at_the_codes_length(digits):
    X, _ = digits
    learn = small_learner(X[:300], 'softmin', topo_kwargs=dict(normalize=True, p=1))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    x = learn.dls.train.dataset[:1000]                                   # normalize=False in the loaders: the rows as they are
    with torch.no_grad():
        length = learn.model.encoder(x).norm(dim=1).mean()
        expected = learn.model.decoder(F.normalize(learn.topography.weight, dim=1) * length)
    fct.test_close(learn.prototypes(), expected, eps=1e-5)
    fct.test_close(learn.topography.distances(5 * learn.encode(X[:20])), learn.topography.distances(learn.encode(X[:20])), eps=1e-4)

def test_forum_layer_in_a_deep_som():
    "The forum's layer drops into a DeepSom once it returns fastsom's output; with the forum's two tables it is refused clearly."
    fct.test_fail(lambda: DeepSom(10, latent_dim=4, topography=Topography.forum(4, 2, 3)), contains="outputs='fastsom'")
    model = DeepSom(10, latent_dim=4, hidden=(8,), topography=Topography.forum(4, 2, 3, outputs='fastsom', sigma=1.))
    x = torch.randn(6, 10)
    recon, z = model(x)
    g = torch.cdist(model.topography.locations, model.topography.locations) ** 2
    d = torch.cdist(F.normalize(z, dim=1), F.normalize(model.topography.lin_wts, dim=1)) ** 2
    forum = (torch.exp(-g[d.argmin(1)] / (2 + 1e-5)) * d).sum(1).mean()
    fct.test_close(DeepSomLoss(model.topography, gamma=0.5)((recon, z), x), F.mse_loss(recon, x) + 0.5 * forum, eps=1e-5)

def test_seeded_weights_are_those_of_torchs_seeded_generator():
    "deep_som_learner(seed=s) starts from the layers torch's generator seeded with s gave (units' directions first, then encoder and decoder), without seeding it."
    x = torch.rand(300, 16, generator=torch.Generator().manual_seed(0))
    dls = som_dataloaders(x, bs=100, seed=0)
    before = torch.random.get_rng_state()
    learn = deep_som_learner(dls, map_size=(4, 4), latent_dim=3, hidden=(8,), seed=2)
    fct.test_eq(torch.random.get_rng_state(), before)
    with torch.random.fork_rng(devices=[]):  # written out, in the test: the same model built on torch's generator seeded with 2
        torch.manual_seed(2)
        model = DeepSom(16, 3, (8,), (4, 4))
    for ours, theirs in zip([*learn.model.encoder.parameters(), *learn.model.decoder.parameters()],
                            [*model.encoder.parameters(), *model.decoder.parameters()]):
        fct.test_eq(ours.detach(), theirs)
