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
    learn, X = _digits_learner(sigma_end=0.7)
    for n in (20, 5):
        learn.som.sigma = 5.
        _fit(learn, n)
        fct.test_close(learn.som.sigma, 0.7)
        fct.test_close(learn.recorder.hps['sigma'][-1], 0.7)
    qe = learn.recorder.values[-1][2]
    _fit(learn, 5, lr_max=0.5)                       # the README's second fit
    fct.test_eq(learn.recorder.hps['sigma'], [0.7] * 5)
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

def _trained(n=10, **kwargs):
    learn, X = _digits_learner(**kwargs)
    _fit(learn, n)
    return learn, X

def test_predict_one_row():
    learn, X = _trained(3)
    position, index, unit = learn.predict(X.iloc[7])
    fct.test_eq(index, learn.bmus(X.iloc[7:8]).index[0])
    fct.test_eq(position, learn.bmus(X.iloc[7:8]).position[0])
    fct.test_close(unit, learn.codebook()[index])
    fct.test_eq(learn.predict(X.to_numpy()[7])[1], index)
    fct.test_fail(lambda: learn.predict(X.iloc[:2]), contains='use learn.bmus(x) for many')

def test_loss_is_a_per_sample_energy_on_any_data():
    from fastsom.loss import sample_energy
    learn, X = _trained(10)
    train_loss, valid_loss, qe, _ = learn.recorder.values[-1]
    preds, targs, losses = learn.get_preds(with_loss=True)                     # fastai's loss_not_reduced
    fct.test_eq(losses.shape, (len(learn.dls.valid.dataset),))
    fct.test_close(losses.mean(), valid_loss, eps=1e-4)                        # the valid loss is their mean
    fct.test_close(losses, sample_energy(targs, learn.som.weight.detach(), preds, learn.som.neighborhood_table()), eps=1e-4)
    # the same number whatever the batch size, and of the size of the distortion (not a sum over units)
    _, _, small = learn.get_preds(dl=learn.dls.test_dl(X.iloc[:300], bs=7), with_loss=True)
    _, _, whole = learn.get_preds(dl=learn.dls.test_dl(X.iloc[:300]), with_loss=True)
    fct.test_close(small, whole, eps=1e-4)
    assert 0.5 * qe ** 2 * 0.5 < losses.mean() < 0.5 * qe ** 2 * 2, (losses.mean(), qe)
    assert abs(train_loss - valid_loss) < 0.2 * valid_loss, (train_loss, valid_loss)

def test_fastai_interpretation_and_tables():
    from fastai.interpret import Interpretation
    learn, X = _trained(3)
    interp = Interpretation.from_learner(learn)
    values, idx = interp.top_losses(5)
    fct.test_eq(len(idx), 5)
    assert (values[:-1] >= values[1:]).all()
    shown = learn.dls.show_batch(max_n=4, show=False)
    fct.test_eq(shown.shape, (4, 64)); fct.test_eq(list(shown.columns), list(X.columns))
    res = learn.show_results(max_n=5, show=False)
    fct.test_eq(list(res.columns[-3:]), ['bmu_row', 'bmu_col', 'distance'])
    fct.test_eq(len(SomInterpretation.from_learner(learn)), len(learn.dls.valid.dataset))   # validation, as in fastai

def test_lr_find_is_refused_with_the_reason():
    learn, _ = _digits_learner()
    fct.test_fail(lambda: learn.lr_find(show_plot=False), contains='natural learning rate is 1')

def test_plot_loss_shows_every_epoch():
    import matplotlib.pyplot as plt
    learn, _ = _trained(10)
    fct.test_eq(len(learn.recorder.losses), 10)
    fig, ax = plt.subplots()
    learn.recorder.plot_loss(ax=ax)
    fct.test_eq(len(ax.lines[0].get_xdata()), 10)
    plt.close(fig)

def test_every_learner_has_its_own_metrics():
    a, _ = _digits_learner()
    b, _ = _digits_learner(metrics=[quantization_error, topographic_error])
    assert not set(map(id, a.metrics)) & set(map(id, b.metrics))
    fct.test_eq([m.name for m in b.metrics], ['quantization_error', 'topographic_error'])
    fct.test_close(quantization_error(a.som.weight.new_zeros(1, 64), torch.zeros(3, 64)), 0.)   # a plain function too

def test_plot_loss_places_valid_losses_at_their_epochs():
    "The valid losses sit at each epoch's last step, as fastai's `iters` (batches so far); they were all drawn at the epoch's row count."
    import matplotlib.pyplot as plt
    X, _ = load_dataset('digits')
    for bs, n_batches in ((None, 1), (256, 7)):
        learn = som_learner(som_dataloaders(X, seed=0, device='cpu', bs=bs), map_size=(4, 4), seed=0)
        _fit(learn, 3)
        fct.test_eq(learn.recorder.iters, [n_batches, 2 * n_batches, 3 * n_batches])
        fct.test_eq(len(learn.recorder.losses), 3 * n_batches)
        fig, ax = plt.subplots()
        learn.recorder.plot_loss(ax=ax)
        fct.test_eq(list(ax.lines[1].get_xdata()), learn.recorder.iters)
        plt.close(fig)
        fct.test_close(learn.recorder.values[-1][0], learn.recorder.losses[-1])   # train_loss: the last epoch's mean
