"""QE and TE of fastsom's defaults beside MiniSom's batch map (`train_batch_offline`) at equal epochs.

Usage: python scripts/defaults_table.py [--seeds 0 1 2] [--sigma-end 0.8] [--threads 1]
Prints a markdown table: per dataset, fastsom's QE and TE (mean and range over the seeds) and MiniSom's,
both measured with the same functions (`fastsom.metrics`) on the same standardised data.
"""
import argparse
import numpy as np, torch
from minisom import MiniSom
from fastsom.all import som_dataloaders, som_learner, load_dataset, quantization_error, topographic_error
from fastsom.core import Grid

def blobs(n=5000, d=16, centers=10, seed=0):
    "Gaussian blobs around random centres (scikit-learn's `make_blobs`), as a DataFrame."
    import pandas as pd
    from sklearn.datasets import make_blobs
    x, _ = make_blobs(n_samples=n, n_features=d, centers=centers, random_state=seed)
    return pd.DataFrame(x, columns=[f'x{i}' for i in range(d)])

# dataset -> (map size, epochs)
CASES = {'digits': ((20, 20), 30), 'wine': ((8, 8), 30), 'breast_cancer': ((10, 10), 30), 'iris': ((8, 8), 30),
         'blobs': ((20, 20), 30)}

def data(name): return blobs() if name == 'blobs' else load_dataset(name)[0]

def fastsom_errors(X, size, epochs, seed, **kwargs):
    dls = som_dataloaders(X, valid_pct=0, seed=seed, device='cpu')
    learn = som_learner(dls, map_size=size, seed=seed, metrics=[], **kwargs)  # errors measured once, at the end
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    x = dls.encode(X)
    return quantization_error(learn.som, x), topographic_error(learn.som, x)

MINISOM_SETTINGS = [(0.15, 'asymptotic_decay'), (0.25, 'inverse_decay_to_one')]  # start radius / longer side, decay

def minisom_errors(X, size, epochs, seed, train=None):
    "MiniSom's batch map from its PCA start: (QE, TE) for each of `MINISOM_SETTINGS` (as in tests/test_quality.py); `train(ms, xs, epochs)` default MiniSom's own loop."
    xs = X.to_numpy(np.float64)
    xs = (xs - xs.mean(0)) / np.where(xs.std(0) > 0, xs.std(0), 1)
    res = []
    for frac, decay in MINISOM_SETTINGS:
        ms = MiniSom(*size, xs.shape[1], sigma=max(frac * max(size), 1.), learning_rate=1., sigma_decay_function=decay, random_seed=seed)
        ms.pca_weights_init(xs)
        (train or MiniSom.train_batch_offline)(ms, xs, epochs)
        w = torch.tensor(ms.get_weights().reshape(-1, xs.shape[1]))
        x = torch.tensor(xs)
        res.append((quantization_error(w, x), topographic_error(w, x, Grid(*size))))
    return res

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--sigma-end', type=float, default=None, help="som_learner's sigma_end (default: its default)")
    p.add_argument('--datasets', nargs='+', default=list(CASES))
    p.add_argument('--no-minisom', action='store_true')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    kwargs = {} if a.sigma_end is None else dict(sigma_end=a.sigma_end)
    names = [f"MiniSom sigma {f:g} x side, {d.split('_')[0]}" for f, d in MINISOM_SETTINGS]
    print(f"| data | map, epochs | fastsom QE | fastsom TE | {' | '.join(n + ' QE / TE' for n in names)} |")
    print('|---' * (4 + len(names)) + '|')
    for name in a.datasets:
        X, (size, epochs) = data(name), CASES[name]
        ours = np.array([fastsom_errors(X, size, epochs, s, **kwargs) for s in a.seeds])
        theirs = [] if a.no_minisom else minisom_errors(X, size, epochs, a.seeds[0])  # deterministic from its PCA start
        fmt = lambda v: f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})" if v.min() != v.max() else f"{v.mean():.3f}"
        print(f"| {name} {X.shape[0]} x {X.shape[1]} | {size[0]}x{size[1]}, {epochs} | {fmt(ours[:, 0])} | {fmt(ours[:, 1])} | "
              + ' | '.join(f"{q:.3f} / {t:.3f}" for q, t in theirs) + ' |', flush=True)

if __name__ == '__main__': main()
