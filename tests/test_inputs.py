"Bad input gets a clear error that names the problem; small and non-square maps work."
import numpy as np, pandas as pd, pytest, torch
import fastcore.test as fct
from fastsom.all import som_dataloaders, som_learner, Som, AttrScheduler

X = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)

def trained(map_size=(3, 5), **kw):
    learn = som_learner(som_dataloaders(X, device='cpu'), map_size=map_size, seed=0, **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    return learn

@pytest.mark.parametrize('bad, message', [
    (np.where(np.arange(800).reshape(200, 4) // 4 == 5, np.nan, X), 'every feature missing (first: index 5)'),  # NaN cells: the table path
    (np.where(np.arange(800).reshape(200, 4) == 9, np.inf, X), 'infinite values'),
    (np.zeros((0, 4)), 'empty'),
    (pd.DataFrame({'a': [1., 2.], 'day': pd.date_range('2020', periods=2)}), "column 'day' holds dates"),
    (np.zeros(5), '2-D'),
    (np.array([['a', 'b']]), 'must be numeric'),
])
def test_bad_training_data(bad, message):
    fct.test_fail(lambda: som_dataloaders(bad), contains=message)

def test_bad_new_data():
    learn = trained()
    fct.test_fail(lambda: learn.bmus(np.zeros((3, 7))), contains='new data has 7 features, expected 4')
    fct.test_fail(lambda: learn.bmus(np.full((3, 4), np.nan)), contains='every feature missing')  # a row with some cells is searched over them
    fct.test_fail(lambda: learn.bmus(np.zeros((0, 4))), contains='empty')

@pytest.mark.parametrize('kw, message', [
    (dict(map_size=(0, 4)), 'map_size must be positive'),
    (dict(map_size=(-2, 4)), 'map_size must be positive'),
    (dict(map_size=(2.5, 4)), 'pair of ints'),
    (dict(distance='mahalanobis'), "unknown distance 'mahalanobis'"),
    (dict(neighborhood='cone'), "unknown neighborhood 'cone'"),
    (dict(topology='triangular'), "unknown topology 'triangular'"),
    (dict(init='kmeans'), "unknown init 'kmeans'"),
    (dict(update='adam'), "unknown update 'adam'"),
    (dict(sigma=0.), 'sigma must be positive'),
    (dict(sigma_end=-1.), 'sigma_end must be positive'),
])
def test_bad_options(kw, message):
    fct.test_fail(lambda: som_learner(som_dataloaders(X, device='cpu'), **kw), contains=message)

@pytest.mark.parametrize('map_size', [(1, 1), (1, 7), (6, 2), (3, 11)])
def test_small_and_non_square_maps(map_size):
    learn = trained(map_size)
    b = learn.bmus(X)
    fct.test_eq(b.index.max() < map_size[0] * map_size[1], True)
    fct.test_eq((b.position[:, 0] < map_size[0]).all() & (b.position[:, 1] < map_size[1]).all(), True)
    qe, te = learn.recorder.values[-1][-2:]
    assert np.isfinite(qe) and (np.isnan(te) if map_size == (1, 1) else 0 <= te <= 1)

def test_one_unit_is_the_mean():
    learn = trained((1, 1))
    fct.test_close(learn.codebook()[0], torch.tensor(X[learn.dls.train.dataset.shape[0] * 0:].mean(0)), eps=0.2)

def test_scheduler_checks_attribute():
    learn = som_learner(som_dataloaders(X, device='cpu'), map_size=3, cbs=AttrScheduler({'temperature': lambda p: 1.}))
    fct.test_fail(lambda: learn.fit(1), contains='no attribute temperature')

def test_one_message_per_kind_of_bad_option():
    "Every module words an unknown option and a non-positive number the same way (through `check_choice` and `check_positive`)."
    from fastsom.all import Topography, SomLoss, SchedAnneal, ConcreteSelector, ShowMap, cluster_units, get_distance
    som = Som(2, 3)
    for make, name, value in [(lambda: get_distance('hamming'), 'distance', 'hamming'),
                              (lambda: SomLoss(som, 'adam'), 'update', 'adam'),
                              (lambda: SchedAnneal(1., .1, mode='cos'), 'mode', 'cos'),
                              (lambda: Topography(4, scale='max'), 'scale', 'max'),
                              (lambda: ShowMap('hitmap'), 'kind', 'hitmap'),
                              (lambda: cluster_units(torch.rand(6, 2), som.grid, 2, method='dbscan'), 'method', 'dbscan')]:
        fct.test_fail(make, contains=f"unknown {name} {value!r}; choose one of '")
    Topography(4, scale=None)                                   # None is one of the scales
    for make, name in [(lambda: Topography(4, temperature=0.), 'temperature'), (lambda: ConcreteSelector(5, 2, temperature=-1.), 'temperature'),
                       (lambda: Topography(4, power=0), 'power')]:
        fct.test_fail(make, contains=f"{name} must be positive")

def test_infinite_radius_is_refused():
    "sigma_end=inf was taken: the radius grew to infinity and every unit ended at the data's mean, without a word."
    x = torch.randn(60, 3)
    fct.test_fail(lambda: som_learner(som_dataloaders(x, device='cpu'), map_size=(3, 3), sigma_end=float('inf')),
                  contains='sigma_end must be positive and finite')
    learn = som_learner(som_dataloaders(x, device='cpu'), map_size=(3, 3))
    fct.test_fail(lambda: setattr(learn.som, 'sigma', float('inf')), contains='sigma must be positive and finite')


def test_a_bool_is_not_a_radius():
    "sigma_end=True was taken as a radius of 1."
    x = torch.randn(60, 3)
    fct.test_fail(lambda: som_learner(som_dataloaders(x, device='cpu'), map_size=(3, 3), sigma_end=True),
                  contains='sigma_end must be a positive number, got True')


def test_auto_end_radius_never_widens_a_map_started_small():
    "With sigma=0.5 and sigma_end='auto' (1.0 here) the radius grew during the fit."
    x = torch.randn(200, 3)
    learn = som_learner(som_dataloaders(x, device='cpu'), map_size=(4, 4), sigma=0.5, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    fct.test_eq(max(learn.recorder.hps['sigma']), 0.5)
    fct.test_eq(learn.som.sigma, 0.5)
