"""One process of the distributed tests, under `torchrun` or started by hand with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.

    python distributed_worker.py DATA.npy OUT [--sources memory,file] [--cases rect,hex] [--fault die|hang] [--timeout S]
                                 [--checkpoint] [--resume EPOCH]

Alone (no WORLD_SIZE) `learner` builds the same learner in one process: the tests' reference."""
import argparse, os, signal, time
from pathlib import Path
import numpy as np, torch
from fastai.callback.core import Callback
from fastai.callback.tracker import SaveModelCallback
from fastai.metrics import mse
from fastsom.all import *

CASES = {'rect': dict(map_size=(6, 5)),
         'hex': dict(map_size=(6, 4), topology='hexagonal', toroidal=True)}

def learner(data, source:str, case:str, timeout:float=60., seed:int=0, plain:bool=False):
    """The learner of one case: the table in memory (one batch), or the .npy file (or the .csv or .parquet beside it) read in blocks of 45 rows;
    `plain`: the loaders of `som_dataloaders`, so that `distrib_ctx` starts the process group."""
    if source in ('memory', 'gaps'):
        x, kw = torch.from_numpy(np.load(data)), dict(seed=seed, device='cpu')
        if source == 'gaps': x = with_gaps(x)
    else:
        x = str(Path(data).with_suffix({'csv': '.csv', 'parquet': '.parquet'}.get(source, '.npy')))
        kw = dict(bs=45, device='cpu', folder=Path(data).parent)  # shares of 135 and 136 rows: 3 and 4 blocks
    dls = som_dataloaders(x, **kw) if plain else distributed_dataloaders(x, timeout=timeout, **kw)
    return som_learner(dls, seed=0, **CASES[case])

def with_gaps(x:torch.Tensor, share:float=0.15) -> torch.Tensor:
    "`x` with `share` of its cells missing (NaN), the same in every process; every row keeps a cell."
    gone = np.random.default_rng(7).random(tuple(x.shape)) < share
    gone[:, 0] &= ~gone[:, 1:].all(1)
    return x.masked_fill(torch.from_numpy(gone), float('nan'))

def minibatch_learner(data, update:str, shuffle:bool=False, timeout:float=60.):
    "Mini-batch SGD (`update` 'kohonen' or 'batchmap') on the table in memory, in batches of 45 rows per process."
    dls = distributed_dataloaders(torch.from_numpy(np.load(data)), seed=0, bs=45, device='cpu', timeout=timeout)
    dls.train.shuffle = shuffle
    return som_learner(dls, seed=0, update=update, **CASES['rect'])

def deep_learner(data, timeout:float=60.):
    "A small deep SOM, trained by Adam in batches of 45 rows per process, in order."
    dls = distributed_dataloaders(torch.from_numpy(np.load(data)), seed=0, bs=45, device='cpu', timeout=timeout)
    dls.train.shuffle = False
    return deep_som_learner(dls, map_size=(4, 4), latent_dim=2, hidden=(16,), seed=0)

def concrete(data, timeout:float=60.):
    "A small concrete autoencoder (random Gumbel noise and dropout in every process), in batches of 45 rows per process."
    dls = distributed_dataloaders(torch.from_numpy(np.load(data)), seed=0, bs=45, device='cpu', timeout=timeout)
    return concrete_learner(dls, k=2, hidden=(8,), metrics=[mse], seed=0)  # `MeanMaxProb` does not add up over processes

def _save(learn, reduce_seconds, out, name, rank):
    torch.save({'codebook': learn.codebook(), 'values': torch.tensor(learn.recorder.values[-1]),
                'reduce_seconds': torch.tensor(reduce_seconds), 'names': list(learn.dls.feature_names)},
               Path(out) / f'{name}-rank{rank}.pt')

class Fault(Callback):
    "Process 1 dies (SIGKILL) or hangs at the start of epoch `at`, after writing the time to `out/fault_at`."
    def __init__(self, kind:str, out, at:int=2): self.kind, self.out, self.at = kind, Path(out), at
    def before_epoch(self):
        if self.epoch != self.at or os.environ.get('RANK') != '1': return
        (self.out / 'fault_at').write_text(repr(time.time()))
        if self.kind == 'die': os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(3600)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('data'); p.add_argument('out')
    p.add_argument('--sources', default='memory,gaps,file,csv,parquet'); p.add_argument('--cases', default='rect,hex')
    p.add_argument('--epochs', type=int, default=5); p.add_argument('--fault', default=None)
    p.add_argument('--timeout', type=float, default=60.); p.add_argument('--seed_by_rank', action='store_true')
    p.add_argument('--fault_at', type=int, default=2)
    p.add_argument('--plain', action='store_true', help='som_dataloaders: the process group is started by distrib_ctx')
    p.add_argument('--checkpoint', action='store_true', help='save the model after every epoch')
    p.add_argument('--resume', type=int, default=0, help='load the checkpoint of the epoch before this one and go on')
    p.add_argument('--minibatch', default='', help="mini-batch SGD instead: 'kohonen', 'batchmap' or both")
    p.add_argument('--shuffle', action='store_true', help='shuffle the mini-batches')
    p.add_argument('--deep', action='store_true', help='a deep SOM, data-parallel, instead')
    p.add_argument('--concrete', action='store_true', help='a concrete autoencoder, data-parallel, instead')
    args = p.parse_args()
    torch.set_num_threads(1)
    rank = os.environ.get('RANK', '0')
    for update in filter(None, args.minibatch.split(',')):
        learn = minibatch_learner(args.data, update, args.shuffle, args.timeout)
        with learn.distrib_ctx(timeout=args.timeout):
            learn.fit(args.epochs)
            secs = learn.distributed_steps.reduce_seconds
        _save(learn, secs, args.out, f'minibatch-{update}', rank)
    if args.deep or args.concrete:
        learn = deep_learner(args.data, args.timeout) if args.deep else concrete(args.data, args.timeout)
        with data_parallel_ctx(learn, timeout=args.timeout):
            learn.fit(args.epochs)
            secs = learn.data_parallel_steps.reduce_seconds
        torch.save({'state': learn.model.state_dict(), 'values': torch.tensor(learn.recorder.values[-1]),
                    'reduce_seconds': torch.tensor(secs)}, Path(args.out) / f"{'deep' if args.deep else 'concrete'}-rank{rank}.pt")
    if args.minibatch or args.deep or args.concrete: args.sources = ''
    for source in filter(None, args.sources.split(',')):
        for case in args.cases.split(','):
            learn = learner(args.data, source, case, args.timeout, int(rank) if args.seed_by_rank else 0, args.plain)
            learn.path, name = Path(args.out), f'{source}-{case}'
            cbs = [Fault(args.fault, args.out, args.fault_at)] if args.fault else []
            if args.checkpoint: cbs.append(SaveModelCallback(every_epoch=True, fname=name))
            if args.resume: learn.load(f'{name}_{args.resume - 1}')
            with learn.distrib_ctx(timeout=args.timeout):
                learn.fit(args.epochs, cbs=cbs, start_epoch=args.resume)
                secs = learn.distributed_batch_map.reduce_seconds
            _save(learn, secs, args.out, name, rank)
            if source == 'memory': learn.export(Path(args.out).absolute() / f'{name}.pkl')
