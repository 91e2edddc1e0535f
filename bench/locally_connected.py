"""Speed of `LocallyConnected2d` (unfold + batched matrix product) against the broadcast formulation.

    python bench/locally_connected.py [--threads 1] [--repeats 10]

The broadcast formulation multiplies the patches [N, 1, C_in k k, L] by the weights [1, C_out, C_in k k, L]
and sums over the third dimension, building an N x C_out x (C_in k k) x L temporary. Both compute the same
output (checked before timing). Inputs 28 x 28, batch 64, kernel 3, no padding, stride 1; median time of
`--repeats` runs after 2 warm-up runs, for the forward pass and for forward + backward.
"""
import argparse, time, statistics
import torch
import torch.nn.functional as F
from fastsom.locally_connected import LocallyConnected2d

def broadcast_lc(lc, x):
    "The direct formulation: one broadcast product and a sum."
    cols = F.unfold(x, lc.kernel_size, padding=lc.padding, stride=lc.stride)                  # [N, CKK, L]
    w = lc.weight.reshape(-1, lc.out_channels, lc.fan_in).permute(1, 2, 0)                    # [C_out, CKK, L]
    out = (cols.unsqueeze(1) * w.unsqueeze(0)).sum(2)                                         # [N, C_out, L]
    return out.reshape(x.shape[0], lc.out_channels, *lc.out_size) + lc.bias

def timeit(f, repeats):
    for _ in range(2): f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

def bench(c_in, c_out, repeats, n=64, size=28, k=3):
    g = torch.Generator().manual_seed(0)
    lc = LocallyConnected2d(c_in, c_out, size, k)
    x = torch.randn(n, c_in, size, size, generator=g, requires_grad=True)
    torch.testing.assert_close(lc(x), broadcast_lc(lc, x), rtol=1e-4, atol=1e-4)
    def fwd(f): 
        with torch.no_grad(): f(lc, x)
    def fwd_bwd(f):
        lc.zero_grad(); x.grad = None; f(lc, x).sum().backward()
    res = {}
    for name, f in (('unfold+bmm', lambda lc, x: lc(x)), ('broadcast', broadcast_lc)):
        res[name] = (timeit(lambda: fwd(f), repeats), timeit(lambda: fwd_bwd(f), repeats))
    return res

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeats', type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} thread(s); batch 64, 28 x 28, kernel 3; median ms of {a.repeats}')
    print(f"{'C_in':>4} {'C_out':>5} | {'fwd bmm':>8} {'fwd bcast':>9} {'speedup':>7} | {'f+b bmm':>8} {'f+b bcast':>9} {'speedup':>7}")
    for c_in, c_out in [(8, 8), (8, 16), (16, 16)]:
        r = bench(c_in, c_out, a.repeats)
        (fb, fbb), (bc, bcb) = r['unfold+bmm'], r['broadcast']
        print(f'{c_in:>4} {c_out:>5} | {fb*1e3:8.2f} {bc*1e3:9.2f} {bc/fb:6.1f}x | {fbb*1e3:8.2f} {bcb*1e3:9.2f} {bcb/fbb:6.1f}x', flush=True)
