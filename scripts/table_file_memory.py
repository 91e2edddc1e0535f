"""Peak memory of reading a CSV table with strings and blank cells in blocks, for two numbers of rows.

    PYTHONPATH=. python scripts/table_file_memory.py [--rows 50000 500000] [--epochs 2]

For each size, a child process writes a table (8 numeric columns, 2 string columns, 10% blank cells),
then builds `som_dataloaders(path, bs=8192)` (two chunked passes: the encoder, then the encoded rows to
.npy) and trains a 10 x 10 map for `--epochs` epochs with `ExactBatchMap`. It reports the peak resident
memory of the child after writing the table (the baseline) and at the end: the difference must not grow
with the number of rows.
"""
import argparse, json, resource, subprocess, sys, tempfile
from pathlib import Path

CHILD = r'''
import json, resource, sys, numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from fastsom.all import som_dataloaders, som_learner
n, folder, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
path = f'{folder}/table.csv'
with open(path, 'w') as f:  # written in chunks, so that the table never sits in memory whole
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        df = pd.DataFrame(rng.normal(size=(m, 8)), columns=[f'x{i}' for i in range(8)])
        df['kind'] = rng.choice(['a', 'b', 'c'], size=m); df['place'] = rng.choice(['north', 'south'], size=m)
        df = df.mask(rng.random(df.shape) < 0.1)
        df.to_csv(f, index=False, header=start == 0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
dls = som_dataloaders(path, bs=8192, valid_pct=0.01, folder=folder, device='cpu')
learn = som_learner(dls, map_size=(10, 10), seed=0, metrics=[])
with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
print(json.dumps(dict(rows=n, base_mb=base / 1024, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--rows', type=int, nargs='+', default=[50_000, 500_000])
    p.add_argument('--epochs', type=int, default=2)
    a = p.parse_args()
    for n in a.rows:
        with tempfile.TemporaryDirectory() as folder:
            r = subprocess.run([sys.executable, '-c', CHILD, str(n), folder, str(a.epochs)], capture_output=True, text=True)
            if r.returncode: sys.exit(r.stderr)
            out = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{n:>9} rows: peak {out['peak_mb']:.0f} MB, {out['peak_mb'] - out['base_mb']:.0f} MB above the baseline", flush=True)
