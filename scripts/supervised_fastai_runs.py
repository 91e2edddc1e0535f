"""The fastai path of `fastsom.supervised`: `som_dataloaders(X, y=...)` and `som_learner`, measured beside the
scikit-learn estimator on the same data.

    python scripts/supervised_fastai_runs.py               # both parts
    python scripts/supervised_fastai_runs.py --part valid  # valid or cv (comma-separated)

valid: fastai's `accuracy` on the validation split (valid_pct=0.2, seeds 0, 1, 2) after 30 epochs, the map sized as
`SomClassifier`'s 'auto' (`auto_map_size` of the training rows), `SomClassifier`'s final radius, xyf (every row labelled).
cv: 5-fold stratified cross-validation (seed 0, the folds of scripts/supervised_runs.py), each fold trained through
`som_learner` with the seed `SomClassifier(random_state=0)` draws, and scored with `get_preds` on the held-out fold,
beside `SomClassifier(random_state=0)` in scripts/supervised_runs.py's pipeline on the same folds.
"""
import argparse, time
import numpy as np, torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from fastai.metrics import accuracy
from fastsom.data import som_dataloaders, load_dataset
from fastsom.learner import som_learner
from fastsom.sklearn import SomClassifier, auto_map_size

DATASETS = ('iris', 'wine', 'breast_cancer', 'digits')

def fit(X, y, seed:int, valid_pct:float, epochs:int=30):
    "A supervised map trained the fastai way on features `X` and labels `y`."
    dls = som_dataloaders(X, y=y, valid_pct=valid_pct, seed=seed, device='cpu')
    learn = som_learner(dls, map_size=auto_map_size(len(dls.train.dataset), SomClassifier._rows_per_unit), sigma_end=SomClassifier().sigma_end, metrics=[accuracy], seed=seed)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def part_valid():
    print('## fastai validation accuracy (valid_pct=0.2, 30 epochs)\n')
    print('| dataset | map | seed 0 | seed 1 | seed 2 | seconds (seed 0) |')
    print('|---|---|---|---|---|---|')
    for name in DATASETS:
        X, y = load_dataset(name)
        accs, secs = [], []
        for seed in (0, 1, 2):
            start = time.perf_counter()
            learn = fit(X, y, seed, 0.2)
            secs.append(time.perf_counter() - start)
            accs.append(learn.recorder.values[-1][-1])  # the last epoch's accuracy, as fastai logged it
        size = learn.som.map_size
        print(f'| {name} | {size[0]}x{size[1]} | ' + ' | '.join(f'{a:.4f}' for a in accs) + f' | {secs[0]:.1f} |', flush=True)

def part_cv():
    print('\n## 5-fold stratified CV (seed 0) through som_learner and get_preds\n')
    print('| dataset | som_learner + get_preds | SomClassifier() (pipeline of scripts/supervised_runs.py) |')
    print('|---|---|---|')
    seed = int(check_random_state(0).randint(2**31 - 1))  # what SomClassifier(random_state=0) trains with
    for name in DATASETS:
        X, y = load_dataset(name)
        start, scores = time.perf_counter(), []
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        for tr, te in cv.split(X, y):
            learn = fit(X.iloc[tr], y.iloc[tr], seed, 0.)
            with learn.no_bar(): probs, targs = learn.get_preds(dl=learn.dls.test_dl(X.iloc[te].assign(target=y.iloc[te])))
            scores.append((probs.argmax(1) == targs).float().mean().item())
        secs, start = time.perf_counter() - start, time.perf_counter()
        est = cross_val_score(make_pipeline(StandardScaler(), SomClassifier(random_state=0)), X.to_numpy(), y.to_numpy(), cv=cv)
        print(f'| {name} | {np.mean(scores):.4f} ± {np.std(scores):.3f} ({secs:.1f} s) | '
              f'{est.mean():.4f} ± {est.std():.3f} ({time.perf_counter() - start:.1f} s) |', flush=True)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--part', default='valid,cv')
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for part in args.part.split(','): dict(valid=part_valid, cv=part_cv)[part]()
