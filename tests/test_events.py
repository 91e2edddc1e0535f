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
