"""Imputation of hidden cells by a SOM trained on the incomplete data, beside column means, KNNImputer(5) and IterativeImputer.

    PYTHONPATH=. python scripts/impute_quality.py [--seeds 0 1 2] [--threads 1]

Each data set is standardised (zero mean, unit variance per column), then 20% of its cells are hidden
completely at random (mask seed `s`). The SOM trains 40 epochs of the exact batch map on the incomplete
table (`som_dataloaders(df, valid_pct=0)`), and `learn.impute` fills each hidden cell from its row's
best-matching unit. The table gives the root mean squared error over the hidden cells, in standard
deviations, and the SOM's error over the column means' error.
"""
import argparse, time, warnings
import numpy as np, pandas as pd, torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401 (makes IterativeImputer importable)
from sklearn.impute import KNNImputer, IterativeImputer, SimpleImputer
from fastsom.all import som_dataloaders, som_learner, load_dataset

SETS = {'wine': (8, 8), 'breast_cancer': (10, 10), 'digits': (15, 15)}

def hide(x:np.ndarray, share:float, seed:int) -> np.ndarray:
    "A copy of `x` with `share` of its cells set to NaN, completely at random, every row keeping one cell."
    rng = np.random.default_rng(seed)
    gone = rng.random(x.shape) < share
    full = gone.all(1)
    gone[np.flatnonzero(full), rng.integers(x.shape[1], size=full.sum())] = False
    return np.where(gone, np.nan, x)

def rmse(filled, x, gone): return float(np.sqrt(np.mean((filled[gone] - x[gone]) ** 2)))

def som_impute(df:pd.DataFrame, map_size, epochs:int, seed:int) -> np.ndarray:
    learn = som_learner(som_dataloaders(df, valid_pct=0, seed=seed, device='cpu'), map_size=map_size, seed=seed)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn.impute(df).to_numpy(dtype=np.float64)

def run(name, map_size, seed, epochs):
    x, _ = load_dataset(name)
    x = x.to_numpy(dtype=np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    holed = hide(x, 0.2, seed)
    gone = np.isnan(holed)
    df = pd.DataFrame(holed, columns=[f'x{i}' for i in range(x.shape[1])])
    row = {'data': name, 'mask seed': seed, 'map': f'{map_size[0]}x{map_size[1]}'}
    t = time.perf_counter()
    row['som'] = rmse(som_impute(df, map_size, epochs, seed), x, gone)
    row['som s'] = time.perf_counter() - t
    row['mean'] = rmse(SimpleImputer().fit_transform(holed), x, gone)
    row['knn5'] = rmse(KNNImputer(n_neighbors=5).fit_transform(holed), x, gone)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # IterativeImputer warns when it stops before converging
        row['iterative'] = rmse(IterativeImputer(random_state=seed).fit_transform(holed), x, gone)
    row['iterative s'] = time.perf_counter() - t
    row['som / mean'] = row['som'] / row['mean']
    return row

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--epochs', type=int, default=40)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for s in a.seeds:
        for name, size in SETS.items():
            rows.append(run(name, size, s, a.epochs))
            print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format='%.3f'))
