"""Search for a default radius rule: TE <= 0.03 with QE at or below MiniSom's batch map, on six data sets.

Usage: python scripts/defaults_search.py [--candidates NAME ...] [--cases NAME ...] [--seeds 0 1 2] [--cache FILE]
Each candidate is a radius rule for `som_learner` (a function of the map and the data, never of the data set's name).
Results (QE, TE per case and seed; MiniSom's once per case and data seed) are cached in a JSON file, so runs can be
resumed and candidates added; the markdown table is printed from the cache at the end.
"""
import argparse, json, os, time
import numpy as np, torch
from fastai.callback.schedule import SchedLin, SchedCos
from fastsom.callback.schedule import AttrScheduler, FromCurrent, SchedAnneal
from defaults_table import CASES, MINISOM_SETTINGS, batch_offline, fastsom_errors, minisom_bar, minisom_errors as table_minisom_errors  # scripts/ is on sys.path when run as a script

# the targets and blobs5k (a target in the first search; `defaults_table.CASES` has every case)
SEARCH_CASES = ['digits', 'wine', 'breast_cancer', 'iris', 'blobs5k', 'blobs100k']

def hold(end, pct_end):
    "Exponential from the current radius to `end` at `pct_end` of the fit, then `end` for the rest."
    return AttrScheduler({'sigma': FromCurrent(end, lambda s, e: SchedAnneal(s, e, 'exp', 0., pct_end))})

# candidate -> f(size, n) -> som_learner kwargs; n is the number of samples
CANDIDATES = {
    'end1.0': lambda size, n: dict(sigma_end=1.0),
    'end1.1': lambda size, n: dict(sigma_end=1.1),
    'end1.2': lambda size, n: dict(sigma_end=1.2),
    'end_side/20': lambda size, n: dict(sigma_end=max(size) / 20),
    'end_max(1,side/20)': lambda size, n: dict(sigma_end=max(1., max(size) / 20)),
    'end_max(1,side/25)': lambda size, n: dict(sigma_end=max(1., max(size) / 25)),
    'hold1.0@0.8': lambda size, n: dict(sigma_end=None, cbs=[hold(1.0, 0.8)]),
    'hold1.0@0.9': lambda size, n: dict(sigma_end=None, cbs=[hold(1.0, 0.9)]),
    'cut_gaussian1.0': lambda size, n: dict(sigma_end=1.0, neighborhood='cut_gaussian'),
    'start_side/3': lambda size, n: dict(sigma=max(size) / 3, sigma_end=1.0),
    'start_side/4': lambda size, n: dict(sigma=max(size) / 4, sigma_end=1.0),
    'end1.3': lambda size, n: dict(sigma_end=1.3),
    'end1.4': lambda size, n: dict(sigma_end=1.4),
    'end1.5': lambda size, n: dict(sigma_end=1.5),
    'end_max(1,side/20)+hold@0.9': lambda size, n: dict(sigma_end=None, cbs=[hold(max(1., max(size) / 20), 0.9)]),
    'lin_end1.0': lambda size, n: dict(sigma_end=None, cbs=[AttrScheduler({'sigma': FromCurrent(1.0, SchedLin)})]),
    'cos_end1.0': lambda size, n: dict(sigma_end=None, cbs=[AttrScheduler({'sigma': FromCurrent(1.0, SchedCos)})]),
    'start_side/3+end_max(1,side/20)': lambda size, n: dict(sigma=max(size) / 3, sigma_end=max(1., max(size) / 20)),
    'start_side/2.5+end_max(1,side/20)': lambda size, n: dict(sigma=max(size) / 2.5, sigma_end=max(1., max(size) / 20)),
    'start_side/4+end_max(1,side/20)': lambda size, n: dict(sigma=max(size) / 4, sigma_end=max(1., max(size) / 20)),
    'end_max(1,side/19.5)': lambda size, n: dict(sigma_end=max(1., max(size) / 19.5)),
    'end1.45': lambda size, n: dict(sigma_end=1.45),
    'end1.52': lambda size, n: dict(sigma_end=1.52),
    'end1.55': lambda size, n: dict(sigma_end=1.55),
    'end1.7': lambda size, n: dict(sigma_end=1.7),
    'end2.0': lambda size, n: dict(sigma_end=2.0),
    'end_max(1,ln(n/units)/pi)': lambda size, n: dict(sigma_end=max(1., np.log(n / np.prod(size)) / np.pi)),
    'start_side/3+end_max(1,ln(n/units)/pi)': lambda size, n: dict(sigma=max(size) / 3, sigma_end=max(1., np.log(n / np.prod(size)) / np.pi)),
    'end_max(1,min(side/20,ln(n/units)/2))': lambda size, n: dict(sigma_end=max(1., min(max(size) / 20, np.log(n / np.prod(size)) / 2))),
    'start_side/6': lambda size, n: dict(sigma=max(size) / 6, sigma_end=1.0),
    'start_side/4+hold1.0@0.9': lambda size, n: dict(sigma=max(size) / 4, sigma_end=None, cbs=[hold(1.0, 0.9)]),
}

def minisom_errors(X, size, epochs, seed, exact=False):
    "MiniSom's batch map from its PCA start: [QE, TE] for each of `MINISOM_SETTINGS` (`exact`: MiniSom's own loop, else `batch_offline`)."
    return [list(r) for r in table_minisom_errors(X, size, epochs, seed, train=None if exact else batch_offline)]

def table(cache, candidates, cases, seeds):
    "Markdown: per candidate and case, QE ('!' when above `minisom_bar` on some seed) and TE (mean, max over seeds); 'x' marks a miss."
    out = ["| candidate | " + " | ".join(cases) + " | all met |", "|---" * (len(cases) + 2) + "|"]
    for c in candidates:
        cells, ok = [], True
        for case in cases:
            pairs = [(cache[f"{c}|{case}|{s}"], cache[f"minisom|{case}|{s if CASES[case][3] else 0}"]) for s in seeds
                     if f"{c}|{case}|{s}" in cache and f"minisom|{case}|{s if CASES[case][3] else 0}" in cache]
            if not pairs: cells.append('-'); ok = False; continue
            q, t = np.array([r for r, _ in pairs]).T
            mq = np.array([minisom_bar(mm, tt) for (_, mm), tt in zip(pairs, t)])
            met = (q <= mq).all() and t.max() <= 0.03
            ok &= bool(met) and len(pairs) == len(seeds)
            seeds_note = '' if len(pairs) == len(seeds) else f", {len(pairs)} seed{'s' if len(pairs) > 1 else ''}"
            cells.append(f"{q.mean():.3f}{'' if (q <= mq).all() else '!'} / {t.mean():.3f} (max {t.max():.3f}{seeds_note}){'' if met else ' x'}")
        out.append(f"| {c} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    return "\n".join(out)

def minisom_table(cache, cases, seeds):
    out = ["| case | " + " | ".join(f"MiniSom sigma {f:g} x side, {d.split('_')[0]} QE / TE" for f, d in MINISOM_SETTINGS) + " |",
           "|---" * (len(MINISOM_SETTINGS) + 1) + "|"]
    for case in cases:
        m = [cache.get(f"minisom|{case}|{s if CASES[case][3] else 0}") for s in seeds]
        if None in m: continue
        m = np.array(m)  # seeds x settings x 2
        out.append(f"| {case} | " + " | ".join(f"{m[:, i, 0].mean():.3f} / {m[:, i, 1].mean():.3f}" for i in range(len(MINISOM_SETTINGS))) + " |")
    return "\n".join(out)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--candidates', nargs='+', default=list(CANDIDATES))
    p.add_argument('--cases', nargs='+', default=SEARCH_CASES)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--cache', default='scripts/defaults_search_cache.json')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--table-only', action='store_true')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cache = json.load(open(a.cache)) if os.path.exists(a.cache) else {}
    save = lambda: json.dump(cache, open(a.cache, 'w'), indent=0)
    if not a.table_only:
        for case in a.cases:
            size, epochs, data, seeded = CASES[case]
            for s in a.seeds:
                X = data(s)
                k = f"minisom|{case}|{s if seeded else 0}"
                if k not in cache: t0 = time.time(); cache[k] = minisom_errors(X, size, epochs, s if seeded else 0); save(); print(k, cache[k], f"{time.time()-t0:.0f}s", flush=True)
                for c in a.candidates:
                    k = f"{c}|{case}|{s}"
                    if k in cache: continue
                    t0 = time.time(); cache[k] = [float(v) for v in fastsom_errors(X, size, epochs, s, **CANDIDATES[c](size, len(X)))]; save()
                    print(k, [round(v, 4) for v in cache[k]], f"{time.time()-t0:.0f}s", flush=True)
    print(minisom_table(cache, a.cases, a.seeds)); print()
    print(table(cache, [c for c in a.candidates if any(f'{c}|{case}|{s}' in cache for case in a.cases for s in a.seeds)], a.cases, a.seeds))

if __name__ == '__main__': main()
