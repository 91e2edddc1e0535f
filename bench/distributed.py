"""The exact batch map on one process with 2 threads against 2 processes with 1 thread each, and the cost of talking.

    python bench/distributed.py                                  # blobs 100k x 64, 30 x 30 map, 5 epochs
    python bench/distributed.py --rows 100000 --features 64 --side 30 --epochs 5 --repeats 3

Both runs train the same map on the same standardised blobs held in memory (one batch per process per
epoch, validation on 10% of the rows with QE and TE), and each is repeated (`--repeats`) with the fastest
run kept (after one untimed warm-up run). The two-process run is started with `torchrun --standalone --nproc_per_node 2` and uses gloo.
For it the table also gives:

- "all-reduce in fit": the seconds per epoch that process 0 spent in the one all-reduce of the epoch,
  waiting for the other process included (the median over the epochs of the fastest run);
- "all-reduce alone": the median seconds of the same all-reduce ([M, D + 1] float32 numbers) repeated
  after training with both processes ready (a barrier first): the cost of the message itself;
- the same for the message of a 100 x 100 map of 784 features (10,000 x 785 float32, 31.4 MB), the
  input of the estimate for 1e9 rows in `nbs/16_distributed.ipynb`.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

def make_blobs_npy(rows, features, path):
    "Standardised float32 blobs (25 centres), as `bench/epoch_speed.py` makes them."
    from sklearn.datasets import make_blobs
    x, _ = make_blobs(rows, features, centers=25, cluster_std=2., random_state=0)
    np.save(path, ((x - x.mean(0)) / x.std(0)).astype(np.float32))

def reduce_seconds(shape, reps=20):
    "Median seconds of one all-reduce of a float32 tensor of `shape`, all processes ready."
    import torch, torch.distributed as dist
    buf, times = torch.zeros(shape), []
    for _ in range(reps):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(buf)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def worker(args):
    "Train `--repeats` times; write the fastest epoch time (and, on several processes, the all-reduce times) as JSON."
    import torch
    from fastsom.all import som_learner, distributed_dataloaders, world_size
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(np.load(args.data))
    dls = distributed_dataloaders(x, seed=0, device='cpu')
    best = None
    for i in range(args.repeats + 1):  # the first run warms up (lazy set-up, caches) and is not kept
        learn = som_learner(dls, map_size=(args.side, args.side), seed=0)
        with learn.distrib_ctx():
            start = time.perf_counter()
            learn.fit(args.epochs)
            seconds = (time.perf_counter() - start) / args.epochs
            comm = list(learn.distributed_batch_map.reduce_seconds) if world_size() > 1 else []
        if i and (best is None or seconds < best['epoch']):
            best = dict(epoch=seconds, fit_reduce=statistics.median(comm) if comm else None,
                        qe=learn.recorder.values[-1][-2], te=learn.recorder.values[-1][-1])
    if world_size() > 1:
        best['alone_reduce'] = reduce_seconds((args.side ** 2, x.shape[1] + 1))
        best['reduce_100x100x785'] = reduce_seconds((10_000, 785), reps=5)
    if int(os.environ.get('RANK', 0)) == 0: Path(args.out).write_text(json.dumps(best))

def main(args):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get('PYTHONPATH')]))}
    common = ['--rows', str(args.rows), '--features', str(args.features), '--side', str(args.side),
              '--epochs', str(args.epochs), '--repeats', str(args.repeats)]
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / 'blobs.npy'
        make_blobs_npy(args.rows, args.features, data)
        runs = {'1 process x 2 threads': [sys.executable, __file__, '--worker', '--threads', '2'],
                '2 processes x 1 thread': [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                                           '--nproc_per_node', '2', __file__, '--worker', '--threads', '1']}
        results = {}
        for name, cmd in runs.items():
            out = Path(d) / 'out.json'
            subprocess.run([*cmd, *common, '--data', str(data), '--out', str(out)], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            results[name] = json.loads(out.read_text())
    one = results['1 process x 2 threads']['epoch']
    ms = lambda s: '' if s is None else f'{1000 * s:.2f}'
    print(f"blobs {args.rows} x {args.features}, {args.side} x {args.side} map, {args.epochs} epochs, best of {args.repeats}, "
          f"{os.cpu_count()} cores\n")
    print('| run | s / epoch | vs 1 process | QE | TE | all-reduce in fit (ms / epoch) | all-reduce alone (ms) | 10000 x 785 all-reduce (ms) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, r in results.items():
        print(f"| {name} | {r['epoch']:.4f} | {r['epoch'] / one:.2f}x | {r['qe']:.4f} | {r['te']:.4f} | {ms(r['fit_reduce'])} | "
              f"{ms(r.get('alone_reduce'))} | {ms(r.get('reduce_100x100x785'))} |")

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=100_000); p.add_argument('--features', type=int, default=64)
    p.add_argument('--side', type=int, default=30); p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--threads', type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument('--data', help=argparse.SUPPRESS); p.add_argument('--out', help=argparse.SUPPRESS)
    args = p.parse_args()
    worker(args) if args.worker else main(args)
