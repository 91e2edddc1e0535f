"""Seconds per epoch of fastsom beside xpysom, MiniSom and torchsom, and beside the machine's own limit.

    python bench/epoch_speed.py                       # every CPU workload, all libraries but MiniSom on blobs200k
    python bench/epoch_speed.py --workloads blobs100k --libs fastsom,xpysom --threads 2
    python bench/epoch_speed.py --skip ''             # MiniSom on blobs200k too: about 520 s per epoch on 2 cores (2026-11-30)
    python bench/epoch_speed.py --device cuda [--tf32]    # on a GPU: the GPU workloads, float32 or TF32 products

Each library trains the same map on the same standardised data, one library at a time in its own
process, with `--threads` threads for torch and for NumPy's BLAS (xpysom and MiniSom compute with NumPy).
`--skip LIB:WORKLOAD,...` leaves out runs too slow to wait for (by default MiniSom on blobs200k); the table
says which were skipped. The header names the processor. The table gives seconds per epoch, each library's time over fastsom's, fastsom's epoch over the
machine's limit, quantization and topographic error (one common function on the returned codebooks),
and the peak resident memory of the process during its first training run (for the disk workloads, fastsom streams a
.npy file, or a Parquet or CSV file converted chunk by chunk, in blocks: its peak must not grow from 100,000 to
1,000,000 rows). The limit is the arithmetic of the BMU search, 2 N M D flops, at the best float32
matrix-product rate this machine reaches in this run (the best over row blocks, so that the product's
output stays in cache, and over torch's two CPU kernels, MKL's and oneDNN's; measured before and after
each workload's runs).

On a GPU (`--device cuda`) the data sits on the GPU, the limit is the best float32 (or, with `--tf32`,
TF32) `torch.mm` rate there, peak MB is the GPU's peak allocated memory, and MiniSom, which has no GPU
path, runs only where its distance table fits in memory. With `--tf32`, torch may round the inputs of
float32 products to TF32; fastsom then re-ranks 8 candidates of each search exactly.

Shared or virtual machines vary from one second to the next: each library's training is repeated
(`--repeats`, 5 by default; once only when a run takes more than a minute) and the fastest run is kept,
as `timeit` does.
"""
import argparse, gc, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

WORKLOADS = {  # name: (samples, features, map height, map width, epochs)
    'digits': (1797, 64, 20, 20, 10),
    'blobs100k': (100_000, 64, 30, 30, 5),
    'blobs200k': (200_000, 256, 50, 50, 2),
    'disk100k': (100_000, 64, 40, 40, 2),    # read from a .npy file in blocks (fastsom only)
    'disk1m': (1_000_000, 64, 40, 40, 2),    # the same, ten times the rows: peak memory must not grow
    'parquet100k': (100_000, 64, 40, 40, 2), # a Parquet file, converted to .npy chunk by chunk, then streamed
    'parquet1m': (1_000_000, 64, 40, 40, 2),
    'csv100k': (100_000, 64, 40, 40, 2),     # a CSV file, converted the same way
    'csv1m': (1_000_000, 64, 40, 40, 2),
    'wide1m': (1_000_000, 784, 100, 100, 2),   # GPU workload: MNIST-wide rows, a 100 x 100 map
}
GPU_WORKLOADS = ('digits', 'blobs100k', 'blobs200k', 'wide1m')
DISK = ('disk100k', 'disk1m', 'parquet100k', 'parquet1m', 'csv100k', 'csv1m')
CPU_WORKLOADS = tuple(name for name in WORKLOADS if name != 'wide1m')  # wide1m: over an hour per library on 2 cores
LIBS = ('fastsom', 'xpysom', 'minisom', 'torchsom')
SKIP = 'minisom:blobs200k'  # about 520 s per epoch on 2 cores: over 1,000 s for one run

def make_data(name, folder):
    "Standardised float32 data of a workload, saved as .npy; returns its path."
    n, d = WORKLOADS[name][:2]
    if name == 'digits':
        from sklearn.datasets import load_digits
        x = load_digits().data
    else:
        from sklearn.datasets import make_blobs
        x, _ = make_blobs(n, d, centers=25, cluster_std=2., random_state=0)
    x = ((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)).astype(np.float32)
    path = Path(folder) / f'{name}.npy'
    np.save(path, x)
    if name.startswith('parquet'):
        import pyarrow as pa, pyarrow.parquet as pq
        table = pa.table({f'x{i}': x[:, i] for i in range(d)})
        pq.write_table(table, path.with_suffix('.parquet'), row_group_size=65536)
        return path.with_suffix('.parquet')
    if name.startswith('csv'):
        import pandas as pd
        pd.DataFrame(x, columns=[f'x{i}' for i in range(d)]).to_csv(path.with_suffix('.csv'), index=False)
        return path.with_suffix('.csv')
    return path

def cpu_name():
    "The processor's model name, as the operating system reports it."
    import platform
    try: return next(l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name'))
    except (OSError, StopIteration): pass
    try: return subprocess.run(['sysctl', '-n', 'machdep.cpu.brand_string'], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError): return platform.processor() or platform.machine()

def sync(device):
    "Wait for the GPU's queued work, so that a timer reads the work done."
    import torch
    if device == 'cuda': torch.cuda.synchronize()

def matmul_limit(n, d, m, threads, device='cpu', reps=5):
    """Seconds for 2 n m d flops at the best blocked float32 matrix-product rate, that rate (GFLOP/s), its kernel and row block.

    The best over row blocks and over the two CPU kernels torch carries: MKL's (`torch.mm`) and oneDNN's
    (`x @ W^T + b`, which fastsom's search uses for blocks of 256 rows or more)."""
    import torch
    torch.set_num_threads(threads)
    x, w = torch.randn(min(n, 65536), d, device=device), torch.randn(m, d, device=device)
    bias = torch.zeros(m)
    kernels = {'MKL' if device == 'cpu' else 'torch.mm': lambda xb, out: torch.mm(xb, w.t(), out=out)}
    if device == 'cpu' and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise'):
        kernels['oneDNN'] = lambda xb, out: torch.ops.mkldnn._linear_pointwise(xb, w, bias, 'none', [], '')
    best, best_kernel, best_rows = 0., None, None
    blocks = (64, 128, 256, 512, 1024, 2048, 4096) if device == 'cpu' else (1024, 4096, 16384, 65536)
    for rows in [r for r in blocks if r <= len(x)]:
        out = torch.empty(rows, m, device=device)
        for _ in range(reps):
            for name, product in kernels.items():
                sync(device); t = time.perf_counter()
                for i in range(0, len(x) - rows + 1, rows): product(x[i:i + rows], out)
                sync(device); rate = 2 * (len(x) // rows) * rows * m * d / (time.perf_counter() - t)
                if rate > best: best, best_kernel, best_rows = rate, name, rows
    return 2 * n * m * d / best, best / 1e9, best_kernel, best_rows

def errors(x, w, height, width):
    "Quantization error and topographic error (8-neighbour, rectangular) of codebook `w` [h*w, d] on `x`."
    import torch
    x, w = torch.from_numpy(x), torch.from_numpy(w).float()
    best2 = torch.cat([torch.cdist(x[i:i + 4096], w).topk(2, largest=False).indices for i in range(0, len(x), 4096)])
    qe = (x - w[best2[:, 0]]).norm(dim=1).mean().item()
    r, c = best2 // width, best2 % width
    te = (((r[:, 0] - r[:, 1]).abs() > 1) | ((c[:, 0] - c[:, 1]).abs() > 1)).float().mean().item()
    return qe, te

def train_fastsom(x, h, w, epochs, device):
    "`x` is an array in memory, or the path of a .npy, .parquet or .csv file to stream from disk."
    import torch
    from fastsom.all import som_dataloaders, som_learner
    on_disk = not isinstance(x, np.ndarray)
    data = x if on_disk else torch.from_numpy(x).to(device)  # on a GPU the data sits there
    dls = som_dataloaders(data, valid_pct=0.001, normalize=False, seed=0, device=device,
                          folder=Path(x).parent if on_disk else None)
    if on_disk:  # one exact batch map per epoch over blocks of rows
        learn = som_learner(dls, map_size=(h, w), metrics=[], seed=0)
        with learn.no_bar(), learn.no_logging():
            t = time.perf_counter(); learn.fit(epochs); sync(device); t = time.perf_counter() - t
        return learn.som.weight.detach().cpu().numpy(), t / epochs, {}
    learn = som_learner(dls, map_size=(h, w), metrics=[], seed=0)
    with learn.no_bar(), learn.no_logging():
        t = time.perf_counter(); learn.fit(epochs); sync(device); t = time.perf_counter() - t
    weights = learn.som.weight.detach().cpu().numpy().copy()  # what fit trained: the bare loop below moves the codebook on
    # the same computation without fastai, epoch by epoch: the radius fit used, BMU search, energy,
    # backward, SGD step, and the validation loss that fit computes after every epoch
    som, loss_func, xt, xv = learn.som, learn.loss_func, dls.train.dataset, dls.valid.dataset
    bare = time.perf_counter()
    for sigma in learn.recorder.hps['sigma']:
        som.sigma = sigma
        loss_func(som(xt), xt).backward()
        with torch.no_grad():
            som.weight -= som.weight.grad
            loss_func(som(xv), xv)
        som.weight.grad = None
    sync(device); bare = time.perf_counter() - bare
    return weights, t / epochs, dict(bare_loop=bare / epochs)

def train_minisom(x, h, w, epochs, device):
    "MiniSom runs on the CPU whatever `device` is."
    from minisom import MiniSom
    som = MiniSom(w, h, x.shape[1], sigma=max(h, w) / 2, learning_rate=1., random_seed=0,
                  sigma_decay_function='inverse_decay_to_one')
    som.pca_weights_init(x)
    t = time.perf_counter(); som.train_batch_offline(x, epochs); t = time.perf_counter() - t
    return som.get_weights().transpose(1, 0, 2).reshape(h * w, -1), t / epochs, {}

def train_xpysom(x, h, w, epochs, device):
    "xpysom's batch SOM, with NumPy on the CPU (CuPy on a GPU)."
    from xpysom import XPySom
    if device == 'cuda': import cupy as xp
    else: xp = np
    som = XPySom(w, h, x.shape[1], sigma=max(h, w) / 2, sigmaN=1., random_seed=0, xp=xp)
    som.pca_weights_init(x)
    t = time.perf_counter(); som.train(x, epochs); sync(device); t = time.perf_counter() - t
    weights = som.get_weights()
    weights = xp.asnumpy(weights) if device == 'cuda' else np.asarray(weights)
    return weights.transpose(1, 0, 2).reshape(h * w, -1), t / epochs, {}

def train_torchsom(x, h, w, epochs, device):
    import torch
    from torchsom.core.som import SOM
    som = SOM(x=h, y=w, num_features=x.shape[1], epochs=epochs, batch_size=256, sigma=max(h, w) / 2,
              learning_rate=0.5, initialization_mode='pca', device=device, search_backend='torch')
    xt = torch.from_numpy(x)
    som.initialize_weights(xt.to(device))
    t = time.perf_counter(); som.fit(xt, verbose=False); sync(device); t = time.perf_counter() - t
    return som.weights.detach().reshape(h * w, -1).cpu().numpy(), t / epochs, {}

def peak_rss_mb():
    "Peak resident memory of this process since it started (VmHWM: unlike ru_maxrss, not inherited from the parent)."
    status = Path('/proc/self/status').read_text()
    return int(status.split('VmHWM:')[1].split()[0]) / 1024

def child(args):
    import torch
    torch.set_num_threads(args.threads)
    if args.tf32: torch.backends.cuda.matmul.fp32_precision = 'tf32'
    n, d, h, w, _ = WORKLOADS[args.workload]
    x = args.data if args.workload in DISK else np.load(args.data)
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        runs.append(globals()[f'train_{args.child}'](x, h, w, args.epochs, args.device))
        if len(runs) == 1:  # the peak of one run: later runs add the allocator's leftovers
            peak_mb = torch.cuda.max_memory_allocated() / 2**20 if args.device == 'cuda' else peak_rss_mb()
        gc.collect()
        if time.perf_counter() - t > 60: break
    weights = runs[-1][0]  # every run starts from the same seed
    seconds = min(r[1] for r in runs)
    extra = {k: min(r[2][k] for r in runs) for k in runs[0][2]}
    sample = np.array(np.load(Path(args.data).with_suffix('.npy'), mmap_mode='r')[:100_000])
    qe, te = errors(sample, np.ascontiguousarray(weights), h, w)
    print(json.dumps(dict(seconds=seconds, qe=qe, te=te, peak_mb=peak_mb, **extra)))

def run_child(lib, workload, data, epochs, args):
    cmd = [sys.executable, __file__, '--child', lib, '--workload', workload, '--data', str(data), '--epochs', str(epochs),
           '--threads', str(args.threads), '--repeats', str(args.repeats), '--device', args.device] + ['--tf32'] * args.tf32
    threads = str(args.threads)  # NumPy's BLAS reads these when it loads
    env = {**os.environ, 'OMP_NUM_THREADS': threads, 'OPENBLAS_NUM_THREADS': threads, 'MKL_NUM_THREADS': threads}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode: return dict(error=r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workloads', default=None, help='default: every CPU workload, or the GPU ones with --device cuda')
    p.add_argument('--libs', default=','.join(LIBS))
    p.add_argument('--skip', default=SKIP, help=f"LIB:WORKLOAD pairs not to run, comma-separated (default {SKIP}; '' runs all)")
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--epochs', type=int, default=None, help='epochs per library (default: per workload)')
    p.add_argument('--repeats', type=int, default=5, help='runs per library; the fastest is kept')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--tf32', action='store_true', help='on a GPU, let torch round float32 products to TF32')
    p.add_argument('--child'); p.add_argument('--workload'); p.add_argument('--data')
    args = p.parse_args()
    if args.child: return child(args)
    if args.tf32:
        import torch
        torch.backends.cuda.matmul.fp32_precision = 'tf32'  # for the limit too
    workloads = args.workloads.split(',') if args.workloads else GPU_WORKLOADS if args.device == 'cuda' else CPU_WORKLOADS
    skip = {tuple(pair.split(':')) for pair in args.skip.split(',') if pair}
    print(f"# fastsom epoch benchmark, {time.strftime('%Y-%m-%d')}, {args.device}{' (TF32)' * args.tf32}, "
          f"{cpu_name()}, {args.threads} threads, {os.cpu_count()} cores\n")
    print(f"`python bench/epoch_speed.py {' '.join(sys.argv[1:])}`\n")
    print('| workload | library | s / epoch | vs fastsom | vs limit | QE | TE | peak MB | note |')
    print('|---|---|---|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as folder:
        for name in workloads:
            n, d, h, w, epochs = WORKLOADS[name]
            epochs = args.epochs or epochs
            data = make_data(name, folder)
            before = matmul_limit(n, d, h * w, args.threads, args.device)
            libs = ['fastsom'] if name in DISK else args.libs.split(',')
            if name == 'wide1m': libs = [lib for lib in libs if lib != 'minisom']  # its 1M x 10,000 distance table: 80 GB
            results = {lib: dict(skipped=True) if (lib, name) in skip else run_child(lib, name, data, epochs, args) for lib in libs}
            limit, rate, kernel, _ = min(before, matmul_limit(n, d, h * w, args.threads, args.device))
            base = results.get('fastsom', {}).get('seconds')
            for lib, r in results.items():
                if 'skipped' in r:
                    print(f"| {name} {n}x{d}, {h}x{w} | {lib} | skipped (--skip {lib}:{name}) |||||||"); continue
                if 'error' in r:
                    print(f"| {name} {n}x{d}, {h}x{w} | {lib} | failed: {r['error']} |||||||"); continue
                vs = f"{r['seconds'] / base:.1f}x" if base else '-'
                note = f"limit {limit:.4f} s at {rate:.0f} GFLOP/s ({kernel})" if lib == 'fastsom' else ''
                if 'bare_loop' in r:
                    note += (f"; fit / bare loop {r['seconds'] / r['bare_loop']:.2f} "
                             f"({1e3 * (r['seconds'] - r['bare_loop']):.1f} ms of fastai per epoch)")
                print(f"| {name} {n}x{d}, {h}x{w}, {epochs} ep | {lib} | {r['seconds']:.4f} | {vs} | "
                      f"{r['seconds'] / limit:.2f} | {r['qe']:.4f} | {r['te']:.4f} | {r['peak_mb']:.0f} | {note} |", flush=True)

if __name__ == '__main__':
    main()
