"New data is matched to the training columns: by name for a DataFrame, by position for an array; a seed repeats mini-batch runs."
import numpy as np, pandas as pd, torch
import fastcore.test as fct
from fastsom.all import *
from fastai.learner import load_learner

def _learner(X, **kwargs):
    learn = som_learner(som_dataloaders(X, seed=0, device='cpu', **kwargs), map_size=(6, 6), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    return learn

def test_dataframe_columns_are_matched_by_name():
    X, _ = load_dataset('wine')
    learn = _learner(X)
    want = learn.bmus(X).index
    fct.test_eq(learn.bmus(X[X.columns[::-1]]).index, want)                    # reordered columns: reordered back
    fct.test_eq(learn.bmus(X.to_numpy()).index, want)                         # an array: training order
    fct.test_eq(learn.dls.encode(X.iloc[::-1]), learn.dls.encode(X).flip(0))
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(X[X.columns[::-1]]))
    fct.test_eq(preds, want)
    fct.test_fail(lambda: learn.bmus(X.rename(columns={'alcohol': 'ethanol'})), contains='missing: alcohol; unknown: ethanol')
    fct.test_fail(lambda: learn.dls.test_dl(X.drop(columns='hue')), contains='missing: hue')
    fct.test_fail(lambda: SomInterpretation.from_learner(learn, x=X.assign(extra=1.)), contains='unknown: extra')

def test_columns_survive_export(tmp_path):
    X, _ = load_dataset('iris')
    learn = _learner(X)
    learn.export(tmp_path / 'm.pkl')
    loaded = load_learner(tmp_path / 'm.pkl')
    fct.test_eq(loaded.bmus(X[X.columns[::-1]]).index, learn.bmus(X).index)

def test_data_without_names_is_taken_in_order():
    X, _ = load_dataset('iris')
    learn = _learner(X.to_numpy())
    fct.test_eq(learn.bmus(pd.DataFrame(X.to_numpy(), columns=list('abcd'))).index, learn.bmus(X.to_numpy()).index)

def test_seed_repeats_a_mini_batch_run():
    X, _ = load_dataset('digits')
    def run(seed):
        learn = som_learner(som_dataloaders(X, bs=128, seed=seed, device='cpu'), map_size=(5, 5), seed=seed)
        with learn.no_bar(), learn.no_logging(): learn.fit(2)
        return learn.som.weight.detach().clone()
    fct.test_eq(run(0), run(0))
    assert not torch.equal(run(0), run(1))

def test_learner_seed_alone_repeats_the_shuffling():
    X, _ = load_dataset('digits')
    dls = som_dataloaders(X, bs=128, valid_pct=0, device='cpu')
    def run():
        learn = som_learner(dls, map_size=(5, 5), seed=3)
        with learn.no_bar(), learn.no_logging(): learn.fit(2)
        return learn.som.weight.detach().clone()
    fct.test_eq(run(), run())
