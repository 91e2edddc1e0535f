"What a fastai user does with a SOM learner: fit twice, set sigma, call fastai's own methods."
import torch
import fastcore.test as fct
from fastai.callback.core import Callback
from fastsom.all import *

def _digits_learner(**kwargs):
    X, _ = load_dataset('digits')
    return som_learner(som_dataloaders(X, seed=0, device='cpu'), map_size=(10, 10), seed=0, **kwargs), X

def _fit(learn, n, **kwargs):
    with learn.no_bar(), learn.no_logging(): (learn.fit_one_cycle if 'lr_max' in kwargs else learn.fit)(n, **kwargs)

def test_sigma_end_is_reached_and_a_second_fit_continues():
    learn, X = _digits_learner()
    for n in (20, 5):
        learn.som.sigma = 5.
        _fit(learn, n)
        fct.test_close(learn.som.sigma, 0.8)
        fct.test_close(learn.recorder.hps['sigma'][-1], 0.8)
    qe = learn.recorder.values[-1][2]
    _fit(learn, 5, lr_max=0.5)                       # the README's second fit
    fct.test_eq(learn.recorder.hps['sigma'], [0.8] * 5)
    assert learn.recorder.values[-1][2] <= qe * 1.001, (qe, learn.recorder.values[-1][2])

def test_a_callback_that_sets_sigma_is_refused_not_overwritten():
    class MySigma(Callback):
        def before_batch(self): self.learn.model.sigma = 2.
    learn, _ = _digits_learner(cbs=MySigma())
    fct.test_fail(lambda: _fit(learn, 2), contains='sigma was changed during fit')
    learn, _ = _digits_learner(cbs=MySigma(), sigma_end=None)    # the user takes control of sigma
    _fit(learn, 2)
    fct.test_eq(learn.som.sigma, 2.)

def test_help_shows_the_real_optimiser():
    import inspect
    from fastai.optimizer import SGD
    fct.test_eq(inspect.signature(som_learner).parameters['opt_func'].default, SGD)
    learn, _ = _digits_learner()
    assert learn.opt_func is SGD
