"""When the compiled masked pick is faster than multiplying out `[x0, m]`: one search of rows with a share of their cells missing, both ways.

    PYTHONPATH=. python scripts/masked_pick_share.py [--threads 1] [--repeats 7]

For 8,000 x 784 rows on a 20 x 20 map and 50,000 x 64 rows on a 30 x 30 map, each with 20%, 35%, 50% and 65% of
the cells missing at random, `Som.bmus` is timed with the compiled masked pick (the product of the rows with
their gaps as 0, each row's missing squares taken off `||w||^2` as the kernel picks) and with it switched off
(the product of `[x0, m]`, twice the columns), alternately, keeping the fastest of `--repeats` runs of each.
`fastsom.missing.MASKED_PICK_SHARE` is set to 1 for the run, so that the compiled pick takes every block
(by default a block whose share of missing or of present cells is above it takes the product).
"""
import argparse, math, time
import torch
import fastsom.missing as fm
from fastsom.all import Som

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeats', type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    compiled = fm.native_masked_first_lowest
    if compiled() is None: raise SystemExit('no compiled masked pick here: it needs the extension and an AVX-512 processor')
    fm.MASKED_PICK_SHARE = 1.
    g = torch.Generator().manual_seed(0)
    print('| rows x features | map | missing | compiled pick ms | [x0, m] product ms | ratio |\n|---|---|---|---|---|---|')
    for n, d, side in ((8000, 784, 20), (50000, 64, 30)):
        for share in (0.2, 0.35, 0.5, 0.65):
            x = torch.randn(n, d, generator=g)
            x[torch.rand(n, d, generator=g) < share] = math.nan
            som = Som(d, (side, side)).init_weights(x.nan_to_num(), 'samples', seed=0)
            best = {True: math.inf, False: math.inf}
            for _ in range(a.repeats):
                for on in (True, False):
                    fm.native_masked_first_lowest = compiled if on else (lambda: None)
                    t = time.perf_counter(); som.bmus(x); best[on] = min(best[on], time.perf_counter() - t)
            fm.native_masked_first_lowest = compiled
            print(f"| {n} x {d} | {side} x {side} | {share:.0%} | {1e3 * best[True]:.1f} | {1e3 * best[False]:.1f} | {best[True] / best[False]:.2f} |", flush=True)
