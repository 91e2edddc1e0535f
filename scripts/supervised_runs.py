"""Measurements behind `fastsom.sklearn`'s defaults: cross-validated accuracy and R^2 against k-nearest neighbours
and SuSi, the read-out against xyf, map sizes, clustering agreement with the classes, and the index 'auto' uses.

    python scripts/supervised_runs.py                    # every part
    python scripts/supervised_runs.py --part cv          # cv, regression, size, radius, cluster or k (comma-separated)

5-fold stratified cross-validation with seed 0 (plain 5-fold with seed 0 for the regression), features
standardised by a `StandardScaler` inside each pipeline. SuSi (`pip install susi`) runs with its own defaults.
"""
import argparse, time, warnings
import numpy as np, torch
from sklearn.datasets import load_iris, load_wine, load_breast_cancer, load_digits, load_diabetes
from sklearn.model_selection import StratifiedKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.metrics import adjusted_rand_score, silhouette_score, davies_bouldin_score
from fastsom.sklearn import SomClassifier, SomRegressor, SomClusterer, auto_map_size
from fastsom.cluster import cluster_units

DATASETS = dict(iris=load_iris, wine=load_wine, breast_cancer=load_breast_cancer, digits=load_digits)

def cv_score(est, X, y, cv):
    "Mean and standard deviation of the fold scores, and the seconds they took."
    start = time.perf_counter()
    s = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=cv)
    return s.mean(), s.std(), time.perf_counter() - start

def susi_models():
    try: import susi
    except ImportError: return {}
    return dict(classifier=lambda: susi.SOMClassifier(random_state=0), regressor=lambda: susi.SOMRegressor(random_state=0))

def part_cv():
    print('## Accuracy, 5-fold stratified CV (seed 0)\n')
    susi = susi_models()
    models = {'SomClassifier()': lambda: SomClassifier(random_state=0),
              "SomClassifier(supervised='readout')": lambda: SomClassifier(supervised='readout', random_state=0),
              'KNeighborsClassifier(5)': lambda: KNeighborsClassifier(5)}
    if susi: models['susi.SOMClassifier()'] = susi['classifier']
    print('| dataset | ' + ' | '.join(models) + ' |')
    print('|---|' + '---|' * len(models))
    for name, load in DATASETS.items():
        X, y = load(return_X_y=True)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        cells = [cv_score(m(), X, y, cv) for m in models.values()]
        print(f'| {name} | ' + ' | '.join(f'{m:.4f} ± {s:.3f} ({t:.1f} s)' for m, s, t in cells) + ' |', flush=True)

def part_regression():
    print('\n## R^2 on diabetes, 5-fold CV (seeds 0, 1, 2)\n')
    X, y = load_diabetes(return_X_y=True)
    susi = susi_models()
    side = auto_map_size(int(len(X) * 0.8), rows_per_unit=2)
    models = {'SomRegressor()': lambda: SomRegressor(random_state=0),
              "SomRegressor(supervised='xyf')": lambda: SomRegressor(supervised='xyf', random_state=0),
              f'SomRegressor(map_size={side}) (2 rows per unit)': lambda: SomRegressor(map_size=side, random_state=0),
              'KNeighborsRegressor(5)': lambda: KNeighborsRegressor(5)}
    if susi: models['susi.SOMRegressor()'] = susi['regressor']
    print('| model | seed 0 | seed 1 | seed 2 |')
    print('|---|---|---|---|')
    for name, m in models.items():
        cells = [cv_score(m(), X, y, KFold(5, shuffle=True, random_state=seed)) for seed in (0, 1, 2)]
        print(f'| {name} | ' + ' | '.join(f'{mean:.4f} ± {sd:.3f} ({t:.1f} s)' for mean, sd, t in cells) + ' |', flush=True)

def part_size():
    print('\n## Map size: units per training row (5-fold stratified CV, seed 0)\n')
    for name, load in DATASETS.items():
        X, y = load(return_X_y=True)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        n = int(len(X) * 0.8)
        for rows_per_unit in (1, 2, 8):
            side = max(2, int(round(np.sqrt(n / rows_per_unit))))
            for sup in ('xyf', 'readout'):
                mean, _, t = cv_score(SomClassifier(map_size=(side, side), supervised=sup, random_state=0), X, y, cv)
                print(f'{name}: {side}x{side} map (1 unit per {rows_per_unit} rows), {sup}: {mean:.4f} ({t:.1f} s)', flush=True)

def part_radius():
    "The estimators' final radius: one value for every data set, chosen on all five (accuracy and R^2)."
    print('\n## Final radius (sigma_end): accuracy (5-fold stratified CV, seed 0) and diabetes R^2 (5-fold CV, seeds 0, 1, 2)\n')
    X_r, y_r = load_diabetes(return_X_y=True)
    print('| sigma_end | ' + ' | '.join(DATASETS) + ' | diabetes R^2 (seeds 0, 1, 2) |')
    print('|---|' + '---|' * (len(DATASETS) + 1))
    for sigma_end in (0.5, 0.6, 0.75, 1.0):  # the map sizes of map_size="auto"
        accs = [cv_score(SomClassifier(sigma_end=sigma_end, random_state=0), *load(return_X_y=True),
                         StratifiedKFold(5, shuffle=True, random_state=0))[0] for load in DATASETS.values()]
        r2 = [cv_score(SomRegressor(sigma_end=sigma_end, random_state=0), X_r, y_r, KFold(5, shuffle=True, random_state=seed))[0]
              for seed in (0, 1, 2)]
        print(f'| {sigma_end} | ' + ' | '.join(f'{a:.4f}' for a in accs) + ' | ' + ', '.join(f'{r:.4f}' for r in r2) + ' |', flush=True)

def part_cluster():
    print('\n## Clusters against the classes (features standardised, random_state=0; the default sigma_end first)\n')
    default = SomClusterer().sigma_end
    for sigma_end in (default, *(s for s in (0.5, 0.75, 1.0) if s != default)):
        for name in ('iris', 'wine'):
            X, y = DATASETS[name](return_X_y=True)
            X = StandardScaler().fit_transform(X)
            for method in ('ward', 'kmeans'):
                kw = dict(method=method, sigma_end=sigma_end, random_state=0)
                ari = adjusted_rand_score(y, SomClusterer(n_clusters=3, **kw).fit_predict(X))
                auto = SomClusterer(**kw).fit(X)
                print(f'sigma_end {sigma_end}, {name}, {method}: ARI of 3 clusters {ari:.3f}; auto picks k = {auto.n_clusters_} '
                      f'(ARI {adjusted_rand_score(y, auto.labels_):.3f})', flush=True)

def part_k():
    print("\n## The index behind n_clusters='auto': silhouette against Davies-Bouldin (Ward, k = 2..10)\n")
    for name in ('iris', 'wine', 'breast_cancer'):
        X, y = DATASETS[name](return_X_y=True)
        X = StandardScaler().fit_transform(X)
        som = SomClusterer(n_clusters=2, random_state=0).fit(X)
        cb, bmu = som.learn_.codebook(decoded=False).numpy(), som.bmus(X)
        hits = np.bincount(bmu, minlength=len(cb))
        sil, db = {}, {}
        for k in range(2, 11):
            lab = cluster_units(cb, som.learn_.som.grid, k, hits)[bmu]
            sil[k], db[k] = silhouette_score(cb[bmu], lab), davies_bouldin_score(cb[bmu], lab)
        print(f'{name}: silhouette picks {max(sil, key=sil.get)}, Davies-Bouldin picks {min(db, key=db.get)}', flush=True)

PARTS = dict(cv=part_cv, regression=part_regression, size=part_size, radius=part_radius, cluster=part_cluster, k=part_k)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--part', default=','.join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    p.add_argument('--threads', type=int, default=1, help='torch threads')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    for part in args.part.split(','): PARTS[part]()
