"Two processes (gloo, this machine) train the exact batch map of one process; a dead or hung process is a clear error."
import os, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import fastcore.test as fct
from distributed_worker import CASES, learner, minibatch_learner, deep_learner

HERE = Path(__file__).parent
WORKER = HERE / 'distributed_worker.py'

def _env(**extra):
    path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get('PYTHONPATH')]))
    return {**os.environ, 'PYTHONPATH': path, 'OMP_NUM_THREADS': '1', **extra}

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "301 rows of 4 features: 271 training rows, which two processes cannot share evenly."
    d = tmp_path_factory.mktemp('distributed')
    x = np.random.default_rng(0).standard_normal((301, 4)).astype(np.float32)
    np.save(d / 'x.npy', x)
    pd.DataFrame(x, columns=list('abcd')).to_csv(d / 'x.csv', index=False)  # converted to .npy by process 0 alone
    pd.DataFrame(x, columns=list('efgh')).to_parquet(d / 'x.parquet')
    return d / 'x.npy'

def _torchrun(data, out, *args):
    "Run the worker on two processes started by torchrun."
    run = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                          str(WORKER), str(data), str(out), *args], capture_output=True, text=True, timeout=600, env=_env())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

def _same_as(alone, got, n_reduces:int):
    "Check a process's results `got` against the one-process learner `alone`."
    fct.test_close(got['codebook'], alone.codebook(), eps=1e-5)
    fct.test_close(got['values'][-2:].tolist(), list(alone.recorder.values[-1][-2:]), eps=1e-6)  # QE, TE
    fct.test_eq(len(got['reduce_seconds']), n_reduces)

@pytest.fixture(scope='module')
def torchrun(data):
    "Every case trained once on two processes started by torchrun; the folder of their results."
    out = data.parent / 'out'; out.mkdir()
    _torchrun(data, out)
    return out

@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('source', ['memory', 'gaps', 'file', 'csv', 'parquet'])  # gaps: 15% of the cells missing
def test_two_processes_equal_one(torchrun, data, source, case):
    alone = learner(data, source, case)
    alone.fit(5)
    for rank in range(2):
        got = torch.load(torchrun / f'{source}-{case}-rank{rank}.pt')
        _same_as(alone, got, 5)  # one all-reduce per epoch
        fct.test_eq(got['names'], alone.dls.feature_names)
    if source == 'memory': assert (torchrun / f'{source}-{case}.pkl').exists()  # written by process 0

def _two(data, out, *args, sources='memory', timeout=180, grace=30):
    """Start two processes by hand (no torchrun to stop the other one): process 0's exit code and end time, and both
    stderrs; process 1 is given `grace` seconds more, then stopped."""
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(data), str(out), '--sources', sources, '--cases', 'rect', *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)))
             for r in range(2)]
    try:
        err0 = procs[0].communicate(timeout=timeout)[1]
        end = time.time()
        try: err1 = procs[1].communicate(timeout=grace)[1]
        except subprocess.TimeoutExpired: err1 = ''
    finally:
        for p in procs:
            if p.poll() is None: p.kill(); p.communicate()
    return procs[0].returncode, err0 + err1, end

@pytest.mark.parametrize('fault', ['die', 'hang'])
def test_fault_stops_the_other_process(data, tmp_path, fault):
    # the hung run reads the file with `som_dataloaders`: its timeout is the one `distrib_ctx` gives the group it starts
    plain = dict(sources='file') if fault == 'hang' else {}
    rc, err, end = _two(data, tmp_path, '--fault', fault, '--timeout', '10', *(['--plain'] if plain else []), grace=1, **plain)
    assert rc != 0 and 'another process died or hung past the timeout' in err, err[-3000:]
    seconds = end - float((tmp_path / 'fault_at').read_text())  # from the fault to the end of process 0
    print(f'{fault}: process 0 stopped {seconds:.1f} s after the fault')
    assert seconds < 60, seconds

def test_process_without_rows(tmp_path):
    np.save(tmp_path / 'x.npy', np.ones((3, 2), np.float32))  # 1 validation row for 2 processes
    rc, err, _ = _two(tmp_path / 'x.npy', tmp_path)
    assert rc != 0 and 'would have no rows' in err, err[-3000:]

def test_processes_with_other_data(data, tmp_path):
    rc, err, _ = _two(data, tmp_path, '--seed_by_rank')  # each process splits the table its own way
    assert rc != 0 and 'hold other data than process 0' in err, err[-3000:]

def test_resume_from_checkpoint(torchrun, data, tmp_path):
    "Process 1 dies at epoch 3; a rerun from the checkpoint of epoch 2 ends on the uninterrupted run's codebook."
    rc, err, _ = _two(data, tmp_path, '--checkpoint', '--fault', 'die', '--fault_at', '3')
    assert rc != 0 and (tmp_path / 'models' / 'memory-rect_2.pth').exists(), err[-3000:]
    rc, err, _ = _two(data, tmp_path, '--resume', '3')
    assert rc == 0, err[-3000:]
    fct.test_close(torch.load(tmp_path / 'memory-rect-rank0.pt')['codebook'],
                   torch.load(torchrun / 'memory-rect-rank0.pt')['codebook'], eps=1e-5)

def test_accelerate_launch(torchrun, data, tmp_path):
    "`accelerate launch` (fastsom[distributed]) starts the same two processes; `--multi_gpu` starts torchrun's launcher, on CPUs too."
    pytest.importorskip('accelerate')
    run = subprocess.run([sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
                          '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no',
                          '--num_cpu_threads_per_process', '1', '--main_process_port', str(_free_port()),
                          str(WORKER), str(data), str(tmp_path), '--sources', 'memory', '--cases', 'rect'],
                         capture_output=True, text=True, timeout=600, env=_env(HF_HUB_OFFLINE='1'))
    assert run.returncode == 0, run.stderr[-5000:]
    for rank in range(2):
        fct.test_close(torch.load(tmp_path / f'memory-rect-rank{rank}.pt')['codebook'],
                       torch.load(torchrun / 'memory-rect-rank0.pt')['codebook'], eps=1e-5)

def test_conversion_error_reaches_every_process(tmp_path):
    pd.DataFrame({'a': [1., 2., 3.], 'b': ['x', 'y', 'z']}).to_csv(tmp_path / 'x.csv', index=False)
    rc, err, _ = _two(tmp_path / 'x.npy', tmp_path, sources='csv')
    assert rc != 0 and 'process 0 could not convert' in err, err[-3000:]  # process 1 does not wait for the file

@pytest.fixture
def even(tmp_path):
    "300 rows: 270 training rows, two shares of 135, three batches of 45 each."
    np.save(tmp_path / 'x.npy', np.random.default_rng(1).standard_normal((300, 4)).astype(np.float32))
    return tmp_path / 'x.npy'

def _on_union(alone):
    "`alone` (a learner of 45-row batches) on batches of 90 rows, each the union of the two processes' batches."
    train = alone.dls.train.dataset
    union = torch.cat([torch.cat([share[i:i + 45] for share in (train[:135], train[135:])]) for i in range(0, 135, 45)])
    alone.dls.loaders[0] = alone.dls.train.new(union, bs=90, shuffle=False)
    alone.fit(5)
    return alone

def test_minibatch_sgd(even, tmp_path):
    "Data-parallel mini-batch SGD: each step is the one-process step of the union of the processes' batches."
    _torchrun(even, tmp_path, '--minibatch', 'kohonen,batchmap')
    for update in ('kohonen', 'batchmap'):
        alone = _on_union(minibatch_learner(even, update))
        for rank in range(2):
            _same_as(alone, torch.load(tmp_path / f'minibatch-{update}-rank{rank}.pt'), 15)  # one all-reduce per batch

def test_minibatch_uneven_shares(data, tmp_path):
    "Shares of 135 and 136 rows, shuffled: both processes take 3 steps per epoch and end on the same codebook."
    _torchrun(data, tmp_path, '--minibatch', 'batchmap', '--shuffle')
    got = [torch.load(tmp_path / f'minibatch-batchmap-rank{rank}.pt') for rank in range(2)]
    fct.test_eq(got[0]['codebook'], got[1]['codebook'])
    fct.test_eq(len(got[0]['reduce_seconds']), 15)

def test_deep_som_data_parallel(even, tmp_path):
    "A deep SOM trained by Adam on two processes: every parameter as with one process on the union of the batches."
    _torchrun(even, tmp_path, '--deep')
    alone = _on_union(deep_learner(even))
    for rank in range(2):
        got = torch.load(tmp_path / f'deep-rank{rank}.pt')
        for name, value in alone.model.state_dict().items(): fct.test_close(got['state'][name], value, eps=1e-5)
        fct.test_close(got['values'][-2:].tolist(), list(alone.recorder.values[-1][-2:]), eps=1e-5)  # reconstruction, TE
        fct.test_eq(len(got['reduce_seconds']), 15)

def test_concrete_autoencoder_data_parallel(even, tmp_path):
    "Each process draws its own Gumbel noise and dropout, yet the averaged gradients keep the processes' models equal."
    _torchrun(even, tmp_path, '--concrete')
    got = [torch.load(tmp_path / f'concrete-rank{rank}.pt') for rank in range(2)]
    for name, value in got[0]['state'].items(): fct.test_eq(got[1]['state'][name], value)
    fct.test_eq(len(got[0]['reduce_seconds']), 15)

def test_distrib_ctx_is_fastsoms_whatever_was_imported():
    "With only fastai.distributed and fastsom.learner imported, `distrib_ctx` is still fastsom's (exact sums), not fastai's (averages)."
    code = ("import fastai.distributed, torch\n"
            "from fastsom.learner import SomLearner, som_learner\nfrom fastsom.data import som_dataloaders\n"
            "learn = som_learner(som_dataloaders(torch.randn(50, 3), device='cpu'), map_size=(2, 2))\n"
            "import sys\nassert 'fastsom.distributed' not in sys.modules\n"
            "with learn.distrib_ctx(): pass\n"
            "assert 'fastsom.distributed' in sys.modules and SomLearner.distrib_ctx.__module__ == 'fastsom.distributed'\n")
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=_env())
    assert run.returncode == 0, run.stderr[-3000:]
