"Map quality of the defaults on real data, measured beside MiniSom's batch map under the same budget."
import numpy as np, pandas as pd, pytest, torch
from minisom import MiniSom
from fastsom.all import som_dataloaders, som_learner, load_dataset, quantization_error, topographic_error, Grid, default_sigma_end

def standardised(X) -> np.ndarray:
    x = X.to_numpy(np.float64)
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)

def fastsom_errors(X, size, epochs=30, seed=0):
    "QE and TE of a map trained with the defaults, on the training data (valid_pct=0)."
    dls = som_dataloaders(X, valid_pct=0, seed=seed, device='cpu')
    learn = som_learner(dls, map_size=size, seed=seed, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    x = dls.encode(X)
    return quantization_error(learn.som, x), topographic_error(learn.som, x)

def minisom_errors(X, size, sigma, decay, epochs=30):
    "QE and TE of MiniSom's batch map (`train_batch_offline`) from its PCA start, measured with fastsom's functions."
    xs = standardised(X)
    ms = MiniSom(*size, xs.shape[1], sigma=sigma, learning_rate=1., sigma_decay_function=decay, random_seed=0)
    ms.pca_weights_init(xs)
    ms.train_batch_offline(xs, epochs)
    w, x = torch.tensor(ms.get_weights().reshape(-1, xs.shape[1])), torch.tensor(xs)
    return quantization_error(w, x), topographic_error(w, x, Grid(*size))

@pytest.mark.slow
def test_digits_20x20_30_epochs_vs_minisom():
    X = load_dataset('digits')[0]
    qe, te = fastsom_errors(X, (20, 20))
    # MiniSom's batch map, 30 epochs, from its PCA start, with the best of the settings we tried
    theirs = [minisom_errors(X, (20, 20), sigma, decay) for sigma, decay in [(3, 'asymptotic_decay'), (5, 'inverse_decay_to_one')]]
    print(f"fastsom qe {qe:.4f} te {te:.4f}; minisom {theirs}")
    assert qe <= min(q for q, _ in theirs), (qe, theirs)
    assert te <= 0.03, te

@pytest.mark.parametrize('name,size', [('wine', (8, 8)), ('iris', (8, 8)), ('breast_cancer', (10, 10))])
def test_small_tables_vs_minisom(name, size):
    "TE at most 0.03, and QE at or below MiniSom's batch map where it keeps TE that low too (its radius from 2 to 1)."
    X = load_dataset(name)[0]
    qe, te = fastsom_errors(X, size)
    theirs = minisom_errors(X, size, 0.25 * max(size), 'inverse_decay_to_one')
    print(f"{name}: fastsom qe {qe:.4f} te {te:.4f}; minisom {theirs}")
    assert te <= 0.03 and theirs[1] <= 0.03, (te, theirs)
    assert qe <= theirs[0], (qe, theirs)

def test_blobs_topographic_error():
    "The target is 0.03; measured 0.0304, 0.0268, 0.0282 on the blobs of seeds 0, 1, 2 (`scripts/defaults_table.py --cases blobs5k`), so 0.035 here."
    from sklearn.datasets import make_blobs
    tes = []
    for seed in (0, 1, 2):
        x, _ = make_blobs(n_samples=5000, n_features=16, centers=10, random_state=seed)
        tes.append(fastsom_errors(pd.DataFrame(x), (20, 20))[1])
    assert max(tes) <= 0.035 and np.mean(tes) <= 0.03, tes

def blobs(n, d, centers, seed):
    from sklearn.datasets import make_blobs
    return pd.DataFrame(make_blobs(n_samples=n, n_features=d, centers=centers, random_state=seed)[0])

def test_many_rows_per_unit_keep_the_topographic_error_low():
    """20,000 x 16 blobs (10 centres) on a 30 x 30 map, 22 rows per unit: the default final radius, 30 / 20 = 1.5, gives
    QE / TE 0.6655 / 0.0228, 0.6038 / 0.0206, 0.6738 / 0.0295 on the blobs of seeds 0, 1, 2; ending at 1 gave TE 0.0439,
    0.0476, 0.0472, and MiniSom's asymptotic batch map (0.15 x side) QE 0.6681, 0.6061, 0.6758
    (`python scripts/defaults_table.py --cases blobs20k30`)."""
    minisom_qe = [0.6681, 0.6061, 0.6758]
    res = [fastsom_errors(blobs(20_000, 16, 10, seed), (30, 30), seed=seed) for seed in (0, 1, 2)]
    qes, tes = np.array(res).T
    assert tes.max() <= 0.035 and tes.mean() <= 0.03, tes
    assert (qes <= minisom_qe).all(), (qes, minisom_qe)

@pytest.mark.slow
def test_blobs_100k_topographic_error():
    """The issue's 100,000 x 64 blobs (20 centres), 30 x 30 map, 30 epochs: TE 0.0265, 0.0293, 0.0298 on seeds 0, 1, 2 with
    the default (ending at 1: 0.0445, 0.0406, 0.0457), QE 1.3755, 1.3975, 1.3826 against 1.3768, 1.3988, 1.3832 for MiniSom's
    asymptotic batch map (`python scripts/defaults_table.py --cases blobs100k`)."""
    res = [fastsom_errors(blobs(100_000, 64, 20, seed), (30, 30), seed=seed) for seed in (0, 1, 2)]
    qes, tes = np.array(res).T
    assert tes.max() <= 0.035 and tes.mean() <= 0.032, tes  # room for another processor's folds; at 1: max 0.0457, mean 0.0436
    assert qes.mean() <= np.mean([1.3768, 1.3988, 1.3832]), qes

def test_default_sigma_end_rule():
    "1 with few rows per unit, longer side / 20 with many, from the training rows (not the validation ones), also of a file."
    assert default_sigma_end(150, (8, 8)) == default_sigma_end(1797, (30, 30)) == default_sigma_end(100_000, (20, 20)) == 1.
    assert default_sigma_end(100_000, (30, 30)) == default_sigma_end(1_000_000, (30, 30)) == 1.5
    assert default_sigma_end(20_000, (40, 40)) == pytest.approx(np.log(20_000 / 1600) / 2)  # between 1 and 40 / 20
    assert default_sigma_end(20_000, (10, 30)) == 1.5  # the longer side
    x = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0))
    def end_radius(data, **kwargs):
        learn = som_learner(som_dataloaders(data, device='cpu', **kwargs), map_size=(30, 30), seed=0, metrics=[])
        with learn.no_bar(), learn.no_logging(): learn.fit(1)
        return learn.som.sigma
    assert end_radius(x, valid_pct=0) == pytest.approx(1.5)
    assert end_radius(x, valid_pct=0.5, seed=0) == pytest.approx(np.log(10_000 / 900) / 2)  # 10,000 training rows
    assert end_radius(x[:2000], valid_pct=0) == pytest.approx(1.)
    with pytest.raises(ValueError, match="unknown sigma_end 'big'"): som_learner(som_dataloaders(x, device='cpu'), sigma_end='big')
    with pytest.raises(ValueError, match='n_rows must be a positive int'): default_sigma_end(0, (3, 3))

def test_default_sigma_end_of_a_file(tmp_path):
    "Rows in a file are counted from its header, not read: the same final radius as in memory."
    from fastsom.data import RowFile
    x = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / 'x.npy', x.numpy())
    learn = som_learner(som_dataloaders(tmp_path / 'x.npy', valid_pct=0, bs=8192, device='cpu'), map_size=(30, 30), seed=0, metrics=[])
    assert isinstance(learn.dls.train.dataset, RowFile)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    assert learn.som.sigma == pytest.approx(1.5)
