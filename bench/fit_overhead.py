"""What fastai's training loop adds to a small SOM's epoch: `learn.fit` beside the same computation without fastai.

    python bench/fit_overhead.py --threads 1
    python bench/fit_overhead.py --threads 2 --repeats 11

On scikit-learn's digits (1,797 x 64, standardised as in `epoch_speed.py`), for four fits of 10 epochs
(no progress bar, no logging):

- `full`: a 20 x 20 map, the whole training split in one batch, `metrics=[]`, 0.1% held out (the
  `epoch_speed.py` setting);
- `full+metrics`: the same with the default metrics and 10% held out (a user's usual call);
- `bs64`: batches of 64 rows;
- `2x2`: a 2 x 2 map, one batch, where the SOM's own arithmetic is smallest and fastai's share largest.

The "bare loop" runs the same epochs without fastai: the radius that fit used, the BMU search, the
energy, its backward, the SGD step (per batch), and the validation loss after each epoch (metrics
not included). Each time is the best of `--repeats` fits; with one thread it is the thread's CPU time,
which a busy machine disturbs less than the wall clock.
"""
import argparse, time
import numpy as np, torch

CASES = {  # name: (map side, batch size, metrics, valid_pct)
    'full': (20, None, [], 0.001),
    'full+metrics': (20, None, None, 0.1),
    'bs64': (20, 64, [], 0.001),
    '2x2': (2, None, [], 0.001),
}

def best_ms(f, repeats, clock):
    times = []
    for _ in range(repeats):
        t = clock(); f(); times.append(clock() - t)
    return 1e3 * min(times)

def bare_loop(learn, epochs):
    "The fit's epochs without fastai: the same batches' arithmetic, in order."
    som, loss_func, dl, xv = learn.som, learn.loss_func, learn.dls.train, learn.dls.valid.dataset
    x = dl.dataset
    sigmas = learn.recorder.hps['sigma']
    per_epoch = len(sigmas) // epochs
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    batches = [x] if dl.bs >= len(x) else [x[perm[i:i + dl.bs]] for i in range(0, len(x), dl.bs)]
    def run():
        for e in range(epochs):
            for i, xb in enumerate(batches):
                som.sigma = sigmas[e * per_epoch + i]
                loss_func(som(xb), xb).backward()
                with torch.no_grad(): som.weight -= learn.lr * som.weight.grad
                som.weight.grad = None
            with torch.no_grad(): loss_func(som(xv), xv)
    return run

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--epochs', type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from sklearn.datasets import load_digits
    from fastsom.all import som_dataloaders, som_learner
    x = load_digits().data
    x = torch.from_numpy(((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)).astype(np.float32))
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"# fit over bare loop, digits, {args.threads} thread(s), best of {args.repeats}, {args.epochs} epochs\n")
    print('| case | fit ms / epoch | bare loop ms / epoch | fit / bare | fastai ms / epoch |')
    print('|---|---|---|---|---|')
    for name, (side, bs, metrics, valid_pct) in CASES.items():
        dls = som_dataloaders(x, valid_pct=valid_pct, bs=bs, normalize=False, seed=0, device='cpu')
        learn = som_learner(dls, map_size=(side, side), metrics=metrics, seed=0)
        with learn.no_bar(), learn.no_logging():
            learn.fit(1)  # warm up
            fit = best_ms(lambda: learn.fit(args.epochs), args.repeats, clock) / args.epochs
        bare = best_ms(bare_loop(learn, args.epochs), args.repeats, clock) / args.epochs
        print(f"| {name} | {fit:.3f} | {bare:.3f} | {fit / bare:.2f} | {fit - bare:.3f} |", flush=True)

if __name__ == '__main__':
    main()
