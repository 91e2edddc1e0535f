"A batch of every row is standardised once and kept; anything that changes the rows or the batch standardises anew."
import pickle
import numpy as np, torch
import fastcore.test as fct
from fastsom.all import som_dataloaders, som_learner

X = np.random.default_rng(0).normal(3., 2., size=(300, 5)).astype(np.float32)

def batch(dl): return next(iter(dl))[0]

def test_one_batch_standardised_once():
    dls = som_dataloaders(X, valid_pct=0.1, seed=0, device='cpu')
    first, second = batch(dls.train), batch(dls.train)
    assert first is second  # kept, not computed again
    fct.test_eq(first, dls.normalizer.encode(dls.train.dataset))
    fct.test_eq(batch(dls.valid), dls.normalizer.encode(dls.valid.dataset))

def test_changed_rows_or_batch_standardised_anew():
    dls = som_dataloaders(X, valid_pct=0.1, seed=0, device='cpu')
    b = batch(dls.train)
    dls.train.dataset[0] += 1.  # the rows change in place
    fct.test_eq(batch(dls.train), dls.normalizer.encode(dls.train.dataset))
    batch(dls.train).mul_(0)  # a callback changes the batch in place
    fct.test_eq(batch(dls.train), dls.normalizer.encode(dls.train.dataset))
    assert batch(dls.train) is not b

def test_mini_batches_are_not_kept():
    dls = som_dataloaders(X, bs=64, seed=0, device='cpu')
    assert batch(dls.train) is not batch(dls.train)
    assert not hasattr(dls.train, '_standardised')

def test_supervised_batch_kept_and_right():
    y = (X[:, 0] > 3).astype(int)
    dls = som_dataloaders(X, y=y, valid_pct=0.1, seed=0, device='cpu')
    (x1, t1), (x2, t2) = next(iter(dls.train)), next(iter(dls.train))
    assert x1 is x2
    fct.test_eq(x1, dls.normalizer.encode(dls.train.dataset[:, :5]))
    fct.test_eq(t1, t2)

def test_training_and_pickling_unchanged():
    "Two fits give the numbers of loaders that standardise every epoch; pickled loaders leave the kept rows behind."
    def fitted(keep):
        dls = som_dataloaders(X, valid_pct=0.1, seed=0, device='cpu')
        if not keep: dls.train.standardised = lambda x: dls.normalizer.encode(x)
        learn = som_learner(dls, map_size=(4, 4), seed=0)
        with learn.no_bar(), learn.no_logging(): learn.fit(3); learn.fit(2)
        return learn
    kept, fresh = fitted(True), fitted(False)
    fct.test_eq(kept.som.weight, fresh.som.weight)
    fct.test_eq(kept.recorder.values, fresh.recorder.values)
    assert '_standardised' in kept.dls.train.__dict__
    assert '_standardised' not in pickle.loads(pickle.dumps(kept.dls.train)).__dict__

def test_other_rows_of_the_same_shape_standardised_anew():
    "Rows swapped for others of the same shape (a fresh tensor counts no change, as the first did) are standardised, not the kept ones."
    dls = som_dataloaders(X, valid_pct=0.1, seed=0, device='cpu')
    batch(dls.train)
    dls.train.dataset = new = dls.train.dataset * 10
    fct.test_eq(batch(dls.train), dls.normalizer.encode(new))

def test_inference_mode():
    "Rows made in inference mode, and batches drawn in it, are standardised: such tensors count no changes, so nothing is kept of them."
    from fastsom.data import SomDataLoader, Standardize
    with torch.inference_mode(): rows = torch.tensor(X)
    dl = SomDataLoader(rows, Standardize.from_data(rows), bs=len(X))
    fct.test_eq(batch(dl), dl.normalizer.encode(rows))
    dls = som_dataloaders(X, valid_pct=0.1, seed=0, device='cpu')
    with torch.inference_mode(): first = batch(dls.valid)
    fct.test_eq(first, dls.normalizer.encode(dls.valid.dataset))
    assert batch(dls.valid) is batch(dls.valid)  # outside it, kept as before
