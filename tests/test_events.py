"SomLearner hands each event only to the callbacks that handle it: training must not change."
import fastcore.test as fct
from fastai.learner import Learner
from fastai.torch_core import set_seed
from fastsom.all import som_dataloaders, som_learner, load_dataset, SomLearner

def fit_digits(bs):
    x, _ = load_dataset('digits')
    learn = som_learner(som_dataloaders(x, bs=bs, seed=0, device='cpu'), map_size=(6, 6), seed=0)
    with learn.no_bar(): learn.fit_one_cycle(3, lr_max=0.5)
    return learn.som.weight.detach().clone(), learn.recorder.values, learn.recorder.lrs

def test_same_training_as_fastai_dispatch(monkeypatch):
    for bs in (None, 256):
        set_seed(0)
        ours = fit_digits(bs)
        with monkeypatch.context() as m:
            m.setattr(SomLearner, '__call__', Learner.__call__)
            m.setattr(SomLearner, '_call_one', Learner._call_one)
            set_seed(0)
            theirs = fit_digits(bs)
        fct.test_eq(ours[0], theirs[0])
        fct.test_close(ours[1], theirs[1], eps=1e-6)
        fct.test_eq(ours[2], theirs[2])

def test_unknown_event_is_refused():
    x, _ = load_dataset('iris')
    learn = som_learner(som_dataloaders(x, device='cpu'), map_size=(3, 3))
    fct.test_fail(lambda: learn('before_lunch'), contains='missing before_lunch')

def _fastai_paths(m):
    "Put fastai's own methods back in place of fastsom's faster ones, on `monkeypatch` context `m`."
    from fastai.learner import Recorder, CastToTensor, AvgLoss
    from fastai.data.load import DataLoader
    from fastsom.learner import SomRecorder, SomCastToTensor, BatchLoss
    from fastsom.data import SomDataLoader
    m.setattr(SomLearner, '__call__', Learner.__call__)
    m.setattr(SomLearner, '_call_one', Learner._call_one)
    m.setattr(SomLearner, '_set_device', Learner._set_device)
    m.setattr(SomLearner, 'to_detach', Learner.to_detach)
    for name in ('_train_mets', '_valid_mets', 'after_batch', 'before_epoch', 'before_train', 'before_validate',
                 'after_train', 'after_validate', 'after_epoch', '__setattr__'):
        if name in vars(SomRecorder): m.setattr(SomRecorder, name, getattr(Recorder, name))
    m.setattr(SomCastToTensor, 'before_batch', CastToTensor.before_batch)
    m.setattr(BatchLoss, 'accumulate', AvgLoss.accumulate)
    m.setattr(SomDataLoader, '__iter__', DataLoader.__iter__)

def _records(bs, metrics):
    x, _ = load_dataset('digits')
    learn = som_learner(som_dataloaders(x, bs=bs, seed=0, device='cpu'), map_size=(5, 5), seed=0, metrics=metrics)
    with learn.no_bar(), learn.no_logging():
        learn.fit(3)
        learn.fit_one_cycle(2, lr_max=0.5)
    r = learn.recorder
    return (learn.som.weight.detach().clone(), r.values, r.lrs, [float(l) for l in r.losses], r.iters, r.hps, r.metric_names,
            learn.final_record, learn.smooth_loss)

def test_same_records_as_fastai(monkeypatch):
    "fastsom's faster steps (dispatch, recorder, cast, device, detach, loader loop) give fastai's results to the bit."
    for bs, metrics in ((None, []), (None, None), (256, None)):
        ours = _records(bs, metrics)
        with monkeypatch.context() as m:
            _fastai_paths(m)
            theirs = _records(bs, metrics)
        fct.test_eq(ours[0], theirs[0])
        for a, b in zip(ours[1:], theirs[1:]): fct.test_eq(a, b)

def test_handlers_found_once_per_set_of_callbacks(monkeypatch):
    "The handlers of each event are looked up once per set of callbacks and attributes, not at every event; a callback added later gets its events."
    import fastsom.learner as fl
    from fastai.callback.core import Callback
    x, _ = load_dataset('iris')
    learn = som_learner(som_dataloaders(x, seed=0, device='cpu'), map_size=(3, 3), seed=0)
    learn.remove_cb(learn.progress)
    learn.fit(2)
    looked = []
    defines = fl._defines
    monkeypatch.setattr(fl, '_defines', lambda obj, name: (name == 'to_detach' or not looked.append(name)) and defines(obj, name))
    with learn.no_logging(): learn.fit(1)  # a callback's attributes changed as the last fit ended: looked up again once
    looked.clear()
    with learn.no_logging(): learn.fit(3)
    fct.test_eq(looked, [])
    class Count(Callback):
        def __init__(self): self.n = 0
        def after_epoch(self): self.n += 1
    count = Count()
    with learn.no_logging(): learn.fit(2, cbs=count)
    fct.test_eq(count.n, 2)
    assert looked
    count.order = -20                       # a new order is a new dispatch, too
    learn.add_cb(count)
    with learn.no_logging(): learn.fit(1)
    fct.test_eq(learn.cbs.sorted('order')[0], count)
    fct.test_eq(count.n, 3)

def test_batches_skip_torchs_iterator(monkeypatch):
    "In-memory batches go straight from the loader to the training loop (PyTorch's iterator only hands them on)."
    from torch.utils.data import dataloader
    made = []
    init = dataloader._SingleProcessDataLoaderIter.__init__
    monkeypatch.setattr(dataloader._SingleProcessDataLoaderIter, '__init__', lambda self, *a: made.append(1) or init(self, *a))
    x, _ = load_dataset('iris')
    for bs in (None, 32):
        learn = som_learner(som_dataloaders(x, bs=bs, seed=0, device='cpu'), map_size=(3, 3), seed=0)
        with learn.no_bar(), learn.no_logging(): learn.fit(2)
    fct.test_eq(made, [])

def test_a_loader_own_to_detach_is_used():
    "A loader's own `to_detach` (as fastsom's distributed runs set) is still called, as in fastai."
    x, _ = load_dataset('iris')
    learn = som_learner(som_dataloaders(x, seed=0, device='cpu'), map_size=(3, 3), seed=0)
    calls = []
    from fastai.torch_core import to_detach
    learn.dls.valid.to_detach = lambda b, cpu=True, gather=True: calls.append(gather) or to_detach(b, cpu, gather=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    assert calls and all(calls), calls

def test_a_list_of_batches_as_loader():
    "fastai's `get_preds(dl=[b])` (as `Learner.summary` calls it) takes a plain list of batches: the detach shortcut must not need a loader object."
    import fastai.callback.hook  # fastai's `Learner.summary`
    x, _ = load_dataset('iris')
    learn = som_learner(som_dataloaders(x, seed=0, device='cpu'), map_size=(3, 3), seed=0)
    b = learn.dls.valid.one_batch()
    with learn.no_bar(): preds, targs = learn.get_preds(dl=[b])
    fct.test_eq(preds, learn.som.bmus(b[0]))
    with learn.no_bar(): assert 'Total params: 36' in str(learn.summary())

def test_summary_with_fastsom_alone():
    "`learn.summary()` works after `from fastsom.all import *` alone (it said \"'Som' object has no attribute 'summary'\")."
    import subprocess, sys
    code = ("from fastsom.all import *\nx, _ = load_dataset('iris')\n"
            "learn = som_learner(som_dataloaders(x, seed=0, device='cpu'), map_size=(3, 3), seed=0)\n"
            "with learn.no_bar(): print(learn.summary())")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert 'Total params: 36' in out.stdout, out.stderr[-500:]


def test_a_handler_set_on_a_callback_later_is_called():
    "Handlers were worked out once per set of callbacks: `cb.after_epoch = f` after a first fit was never called."
    import torch
    from fastai.callback.core import Callback
    learn = som_learner(som_dataloaders(torch.randn(100, 3), device='cpu'), map_size=(3, 3), metrics=[])
    cb = Callback()
    learn.add_cb(cb)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
        calls = []
        cb.after_epoch = lambda: calls.append(1)
        learn.fit(2)
    fct.test_eq(len(calls), 2)


def test_the_loop_moves_torchs_generator_as_fastais_does():
    "The loader's own loop skipped the seed PyTorch's iterator draws, so seeded runs using torch's generator changed."
    import torch
    from fastai.data.load import DataLoader
    from fastsom.data import SomDataLoader
    dl = SomDataLoader(torch.randn(100, 3), bs=32)
    torch.manual_seed(0); list(dl); ours = torch.rand(1)
    torch.manual_seed(0); list(DataLoader.__iter__(dl)); fastais = torch.rand(1)
    fct.test_eq(ours, fastais)
