"Export/load_learner and save/load round-trip to identical BMUs, with string and callable choices."
import pytest, torch
import fastcore.test as fct
from fastai.learner import load_learner
from fastsom.all import som_dataloaders, som_learner, load_dataset, manhattan, bubble, lp

X, _ = load_dataset('wine')

def my_distance(x, w):
    "A user-defined distance: L1 computed by hand."
    return (x[:, None] - w[None]).abs().sum(-1)

def fitted(**kw):
    kw = {'map_size': (5, 7), **kw}
    learn = som_learner(som_dataloaders(X, seed=0, device='cpu'), seed=0, **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(4)
    return learn

@pytest.mark.parametrize('kw', [dict(), dict(distance='manhattan', neighborhood='bubble'),
                                dict(distance=manhattan, neighborhood=bubble), dict(distance=my_distance),
                                dict(distance=lp(3), topology='hexagonal', toroidal=True, map_size=(6, 7))])
def test_export_round_trip(tmp_path, kw):
    learn = fitted(**kw)
    learn.export(tmp_path / 'som.pkl')
    back = load_learner(tmp_path / 'som.pkl')
    fct.test_eq(back.bmus(X).index, learn.bmus(X).index)
    fct.test_eq(back.codebook(), learn.codebook())
    assert not list(tmp_path.glob('.*tmp'))

def test_string_and_callable_train_alike():
    fct.test_eq(fitted(distance='manhattan').codebook(), fitted(distance=manhattan).codebook())
    fct.test_eq(fitted(distance='manhattan').codebook(), fitted(distance=my_distance).codebook())

def test_save_load(tmp_path):
    learn = fitted()
    learn.path = tmp_path
    learn.save('som')
    other = som_learner(som_dataloaders(X, seed=0, device='cpu'), map_size=(5, 7), init='random', seed=3)
    other.path = tmp_path
    assert not torch.equal(other.bmus(X).index, learn.bmus(X).index)
    other.load('som')
    fct.test_eq(other.bmus(X).index, learn.bmus(X).index)

def test_failed_export_keeps_old_file(tmp_path, monkeypatch):
    learn = fitted()
    learn.export(tmp_path / 'som.pkl')
    before = (tmp_path / 'som.pkl').read_bytes()
    def broken(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', broken)
    fct.test_fail(lambda: learn.export(tmp_path / 'som.pkl'), contains='disk full')
    fct.test_eq((tmp_path / 'som.pkl').read_bytes(), before)
    assert [p.name for p in tmp_path.iterdir()] == ['som.pkl']

def test_get_preds_on_new_data_matches_bmus():
    learn = fitted()
    preds, targets = learn.get_preds(dl=learn.dls.test_dl(X.iloc[:50], bs=16))
    fct.test_eq(preds, learn.bmus(X.iloc[:50]).index)
    fct.test_close(targets, learn.dls.encode(X.iloc[:50]))

def test_fit_after_load_learner(tmp_path):
    "An exported learner keeps no data: fit refuses (it recorded None and trained nothing), and fits on once given its loaders."
    learn = fitted()
    learn.export(tmp_path / 'som.pkl')
    back = load_learner(tmp_path / 'som.pkl')
    fct.test_fail(lambda: back.fit(2), contains='has no training data')
    fct.test_fail(lambda: back.fit_one_cycle(2), contains='has no training data')
    back.dls = som_dataloaders(X, seed=0, device='cpu')
    with back.no_bar(), back.no_logging(): back.fit(2)
    assert all(v is not None for v in back.recorder.values[-1]), back.recorder.values


def test_export_keeps_no_training_rows(tmp_path):
    "`new_empty` kept a view of the training rows, so export pickled all of them (4 MB for 50,000 x 20)."
    x = torch.randn(50_000, 20)
    learn = som_learner(som_dataloaders(x, device='cpu'), map_size=(3, 3), metrics=[])
    learn.export(tmp_path / 'm.pkl')
    assert (tmp_path / 'm.pkl').stat().st_size < 1_000_000, (tmp_path / 'm.pkl').stat().st_size
