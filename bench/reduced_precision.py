"""How often a BMU search in reduced precision picks the same unit as float32, on trained maps.

    python bench/reduced_precision.py                     # digits, blobs100k, blobs200k
    python bench/reduced_precision.py --workloads blobs100k --ks 1,4,8
    python bench/reduced_precision.py --device cuda --workloads digits,blobs100k,blobs200k,wide1m

Each workload of `epoch_speed.py` is trained with fastsom (float32, its default epochs); then the BMUs of
its data are searched again with the inputs of the matrix product rounded to bfloat16 (8 significant
bits) or to TF32 (11 significant bits), with float32 accumulation and float32 output, as a GPU's
tensor cores compute them. The `k` lowest of those scores are candidates, re-ranked by their float32
distances summed elementwise, as fastsom does. The table gives the share of samples whose BMU equals the
float32 one; the share whose unit is the float32 one or no more than 1e-5 (relative) farther, a gap
float32's own rounding can close; and, where the unit differs, how much farther it is (mean relative
excess of the squared distance). A first row compares float32 with float64, to show how many near-ties
the trained map has.

On a CPU the rounding is an emulation (done by hand; the product runs in float32): it measures
agreement, not speed. On a GPU (`--device cuda`) the TF32 rows are the tensor cores' own products
(bfloat16 stays emulated), and a last row is fastsom's own search (`Som.bmus`) with torch's TF32 switch on.
"""
import argparse, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np, torch

sys.path.insert(0, str(Path(__file__).parent))
from epoch_speed import WORKLOADS, make_data

def round_tf32(t):
    "Round float32 values to TF32's 10 stored mantissa bits (to nearest)."
    return ((t.view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)

def round_bf16(t): return t.bfloat16().float()

def trained_map(name, folder, device='cpu'):
    "Standardised data of a workload and the `Som` fastsom trains on it (float32 products), on `device`."
    from fastsom.all import som_dataloaders, som_learner
    h, w, epochs = WORKLOADS[name][2:]
    x = torch.from_numpy(np.load(make_data(name, folder))).to(device)
    learn = som_learner(som_dataloaders(x, valid_pct=0, normalize=False, seed=0, device=device),
                        map_size=(h, w), metrics=[], seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return x, learn.som

@contextmanager
def tf32_products():
    "Within the block, torch may round the inputs of float32 products on the GPU to TF32."
    before = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = 'tf32'
    try: yield
    finally: torch.backends.cuda.matmul.fp32_precision = before

def compare(x, som, ks, rows=4096, tol=1e-5):
    "Agreement with float32, up to `tol`, with float64, and mean relative excess distance where the unit differs from float32's."
    w = som.weight.detach()
    w2, wt = (w * w).sum(1), -2 * w.t()
    hardware = x.is_cuda  # the GPU's tensor cores round to TF32 themselves
    same, close, as_f64, excess = {}, {}, {}, {}
    for i in range(0, len(x), rows):
        xb = x[i:i + rows]
        exact = torch.addmm(w2, xb, wt)
        best, x2 = exact.argmin(1), (xb * xb).sum(1)
        d_best = exact.gather(1, best[:, None])[:, 0] + x2
        nearest = torch.addmm(w2.double(), xb.double(), wt.double()).argmin(1)
        found = {'float64': nearest}
        for name, rnd in (('bf16', round_bf16), ('tf32', round_tf32)):
            if name == 'tf32' and hardware:
                with tf32_products(): scores = torch.addmm(w2, xb, wt)
            else: scores = w2 + rnd(xb) @ rnd(wt)
            for k in ks:
                cand = scores.topk(k, 1, largest=False).indices
                dist = (xb[:, None, :] - w[cand]).pow(2).sum(2)
                found[f'{name} k={k}'] = cand.gather(1, dist.argmin(1, keepdim=True))[:, 0]
        if hardware:
            with tf32_products(): found['fastsom, TF32 on'] = som(xb)
        for key, pick in found.items():
            d_pick = exact.gather(1, pick[:, None])[:, 0] + x2
            miss = pick != best
            rel = (d_pick - d_best) / d_best.clamp(min=1e-12)
            same[key] = same.get(key, 0) + (~miss).sum().item()
            close[key] = close.get(key, 0) + (rel <= tol).sum().item()
            as_f64[key] = as_f64.get(key, 0) + (pick == nearest).sum().item()
            excess[key] = excess.get(key, []) + rel[miss].tolist()
    return {key: (same[key] / len(x), close[key] / len(x), as_f64[key] / len(x), np.mean(excess[key]) if excess[key] else 0.)
            for key in same}

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workloads', default='digits,blobs100k,blobs200k')
    p.add_argument('--ks', default='1,2,4,8', help='numbers of candidates re-ranked exactly')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == 'cuda': torch.backends.cuda.matmul.fp32_precision = 'ieee'  # train and search the reference in float32
    ks = [int(k) for k in args.ks.split(',')]
    print(f"# BMU agreement with float32 after training, {time.strftime('%Y-%m-%d')}, {args.device}"
          f"{' (TF32 rows: tensor cores)' * (args.device == 'cuda')}\n")
    print('| workload | search | same BMU as float32 | same or within 1e-5 | same as float64 | excess distance where not float32 |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as folder:
        for name in args.workloads.split(','):
            n, d, h, w, epochs = WORKLOADS[name]
            x, som = trained_map(name, folder, args.device)
            for key, (share, close, f64, excess) in compare(x, som, ks).items():
                print(f"| {name} {n}x{d}, {h}x{w}, {epochs} ep | {key} | {100 * share:.3f}% | {100 * close:.3f}% | {100 * f64:.3f}% | "
                      f"{100 * excess:.4f}% |", flush=True)

if __name__ == '__main__':
    main()
