"""GFLOP/s of torch's two float32 CPU matrix-product kernels on the search's blocks: MKL's (`torch.mm`) and oneDNN's.

    python bench/product_kernels.py --threads 1

`fastsom.som.score_product` takes oneDNN's for blocks of 256 rows or more; this shows what that choice is
worth on the machine at hand. Best of 5 runs over 16,384 rows, the kernels in turn.
"""
import argparse, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from epoch_speed import cpu_name

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# float32 product kernels, {time.strftime('%Y-%m-%d')}, {cpu_name()}, {args.threads} threads\n")
    print('| features | units | rows per block | MKL GFLOP/s | oneDNN GFLOP/s |')
    print('|---|---|---|---|---|')
    g = torch.Generator().manual_seed(0)
    for d, m in [(16, 400), (64, 400), (64, 900), (256, 2500), (784, 2500)]:
        x, w = torch.randn(16384, d, generator=g), torch.randn(m, d, generator=g)
        kernels = {'MKL': lambda xb: torch.mm(xb, w.t()),
                   'oneDNN': lambda xb: torch.ops.mkldnn._linear_pointwise(xb, w, None, 'none', [], '')}
        for rows in (256, 1024, 4096):
            best = {}
            for _ in range(5):
                for name, product in kernels.items():
                    t = time.perf_counter()
                    for i in range(0, len(x) - rows + 1, rows): product(x[i:i + rows])
                    best[name] = min(best.get(name, float('inf')), time.perf_counter() - t)
            flops = 2 * (len(x) // rows) * rows * m * d
            print(f"| {d} | {m} | {rows} | {flops / best['MKL'] / 1e9:.0f} | {flops / best['oneDNN'] / 1e9:.0f} |", flush=True)

if __name__ == '__main__':
    main()
