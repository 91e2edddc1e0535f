"""Seconds per epoch on 100,000 x 64 blobs with 20% of the cells missing (and with one missing cell in 2% of the rows), over the same epoch on the complete data.

    PYTHONPATH=. python scripts/missing_speed.py [--repeats 5] [--threads 1] [--epochs 2]

Both runs train the map of `bench/epoch_speed.py`'s blobs100k workload (30 x 30 units, the whole
training split in one batch, no metrics) in this one process, alternately, and keep the fastest of
`--repeats` runs of each, as `timeit` does: a shared machine slows runs at random, never speeds them up.
The incomplete data goes through the table path (`som_dataloaders` sees the NaN cells), so the ratio
counts everything missing cells cost: the masked search (in threads, like the complete one), the
per-feature sums and the checks. Beside the wall-clock seconds it gives the process's CPU seconds
(all threads together), which other programs on a shared machine disturb less: with one thread they are
the work itself.
"""
import argparse, time
import numpy as np, torch
from sklearn.datasets import make_blobs
from fastsom.all import som_dataloaders, som_learner

def epoch_seconds(data, epochs:int) -> tuple[float, float]:
    "Wall-clock and CPU seconds per epoch of `learn.fit(epochs)` on `data`."
    dls = som_dataloaders(data, valid_pct=0.001, seed=0, device='cpu')
    learn = som_learner(dls, map_size=(30, 30), metrics=[], seed=0)
    with learn.no_bar(), learn.no_logging():
        t, c = time.perf_counter(), time.process_time()
        learn.fit(epochs)
        t, c = time.perf_counter() - t, time.process_time() - c
    return t / epochs, c / epochs

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--epochs', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, _ = make_blobs(100_000, 64, centers=25, cluster_std=2., random_state=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    rng = np.random.default_rng(0)
    holed = np.where(rng.random(x.shape) < 0.2, np.nan, x).astype(np.float32)
    few = x.copy()  # one missing cell in 2% of the rows: most rows complete, as in many real tables
    rows = rng.random(len(x)) < 0.02
    few[rows, rng.integers(0, x.shape[1], rows.sum())] = np.nan
    data = {'complete': x, 'missing 20%': holed, 'gap in 2% of rows': few}
    times = {k: [] for k in data}
    for _ in range(a.repeats):
        for k, d in data.items(): times[k].append(epoch_seconds(d, a.epochs))
        print({k: f'{v[-1][0]:.3f} s ({v[-1][1]:.3f} s CPU)' for k, v in times.items()}, flush=True)
    wall = {k: min(t for t, _ in v) for k, v in times.items()}
    cpu = {k: min(c for _, c in v) for k, v in times.items()}
    print(f"threads {a.threads}, best of {a.repeats}: complete {wall['complete']:.3f} s/epoch, "
          f"20% missing {wall['missing 20%']:.3f} s/epoch, ratio {wall['missing 20%'] / wall['complete']:.2f}; "
          f"CPU seconds {cpu['complete']:.3f} and {cpu['missing 20%']:.3f}, ratio {cpu['missing 20%'] / cpu['complete']:.2f}; "
          f"a gap in 2% of the rows {wall['gap in 2% of rows']:.3f} s/epoch, ratio {wall['gap in 2% of rows'] / wall['complete']:.2f}")
