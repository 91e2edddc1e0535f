"Targets the fastai way: som_dataloaders(y_names=...) gives (x, y) batches; som_learner trains a supervised map, with metrics, get_preds and predict."
import numpy as np, pandas as pd, torch, pytest
import fastcore.test as fct
from fastsom.all import *
from fastsom.supervised import SupervisedSomLearner, TargetDataLoaders
from fastai.learner import load_learner
from fastai.metrics import accuracy, rmse, R2Score

SPECIES = np.array(['setosa', 'versicolor', 'virginica'], dtype=object)

def _iris(labels=None):
    X, y = load_dataset('iris')
    return X.assign(species=SPECIES[y.to_numpy()] if labels is None else labels)

def _fit(dls, epochs=30, **kwargs):
    learn = som_learner(dls, **{'map_size': (8, 8), 'sigma_end': 0.5, 'seed': 0, **kwargs})
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def test_labels_beside_the_features_give_x_y_batches():
    df = _iris()
    dls = som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu')
    assert isinstance(dls, TargetDataLoaders)
    fct.test_eq(dls.feature_names, [c for c in df.columns if c != 'species'])
    fct.test_eq(list(dls.vocab), list(SPECIES))
    x, y = dls.valid.one_batch()
    fct.test_eq(x.shape, (30, 4)); fct.test_eq(y.dtype, torch.long)
    idx = dls.valid.dataset[:, -1].long()  # the stored class column matches the labels of the validation rows
    fct.test_eq(y, idx)
    fct.test_close(x, dls.normalizer.encode(dls.valid.dataset[:, :4]))  # standardised with the training split's statistics
    fct.test_close(dls.normalizer.mean, dls.train.dataset[:, :4].mean(0))

def test_fit_reports_fastai_accuracy_and_predicts_new_rows():
    df = _iris()
    learn = _fit(som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu'), metrics=[accuracy])
    assert isinstance(learn, SupervisedSomLearner)
    fct.test_eq(learn.recorder.metric_names[-2], 'accuracy')
    acc = learn.recorder.values[-1][-1]
    assert acc > 0.85, acc  # seeds 0-4 measured 0.900-1.000 on the 30 validation rows
    new = df.drop(columns='species').iloc[[0, 60, 120]]
    probs, targs = learn.get_preds(dl=learn.dls.test_dl(new))
    assert targs is None
    fct.test_eq(probs.shape, (3, 3)); fct.test_close(probs.sum(1), torch.ones(3))
    label, idx, p = learn.predict(new.iloc[1])
    fct.test_eq(p, probs[1]); fct.test_eq(idx, probs[1].argmax()); fct.test_eq(label, SPECIES[idx])
    fct.test_eq(learn.predict(df.iloc[0])[0], learn.predict(new.iloc[0])[0])  # a row that still has its label
    fct.test_eq(learn.predict(new.iloc[0].to_numpy())[2], probs[0])  # an array in training order

def test_same_map_as_the_sklearn_estimator():
    from fastsom.sklearn import SomClassifier
    from sklearn.utils import check_random_state
    X, y = load_dataset('wine')
    seed = int(check_random_state(0).randint(2**31 - 1))  # the seed SomClassifier(random_state=0) trains with
    for supervised in ('xyf', 'readout'):
        clf = SomClassifier(map_size=(8, 8), epochs=10, supervised=supervised, random_state=0, device='cpu').fit(X, y)
        learn = _fit(som_dataloaders(X, y=y, valid_pct=0, device='cpu'), epochs=10, seed=seed, supervised=supervised, sigma_end=clf.sigma_end)
        probs, _ = learn.get_preds(dl=learn.dls.test_dl(X))
        fct.test_close(probs.numpy(), clf.predict_proba(X), eps=1e-6)
        fct.test_close(learn.model.readout()(learn.bmus(X).index), clf.predict_proba(X), eps=1e-6)

def test_missing_labels_train_the_features_only():
    labels = SPECIES[load_dataset('iris')[1].to_numpy()].copy()
    labels[::2] = None
    dls = som_dataloaders(_iris(labels), y_names='species', valid_pct=0.2, seed=0, device='cpu')
    fct.test_eq(len(dls.valid.dataset), 15)   # a fifth of the 75 labelled rows
    fct.test_eq(len(dls.train.dataset), 135)  # the other labelled rows and all 75 unlabelled ones
    assert (dls.valid.one_batch()[1] >= 0).all()
    learn = _fit(dls)
    assert learn.model.block is None  # partly labelled: the classes are read off the map
    assert learn.validate()[1] > 0.65  # seeds 0-4 measured 0.733-1.000 on 15 rows
    fct.test_fail(lambda: som_learner(dls, supervised='xyf'), contains='75 of 135 are not')

def test_numeric_target_with_rmse_and_r2():
    X, _ = load_dataset('iris')
    X = X.copy(); X.iloc[::10, 3] = np.nan  # unlabelled rows
    dls = som_dataloaders(X, y_names='petal width (cm)', valid_pct=0.2, seed=0, device='cpu')
    assert dls.vocab is None
    learn = _fit(dls, map_size=(6, 6), metrics=[rmse, R2Score()])
    assert learn.model.block is None  # numbers: read off the map
    _, err, r2 = learn.validate()
    assert r2 > 0.8 and err < 0.35, (r2, err)  # seeds 0-4 measured R^2 0.854-0.915, rmse 0.222-0.286
    value, pred, raw = learn.predict(X.iloc[1].drop('petal width (cm)'))
    assert isinstance(value, float); fct.test_eq(pred.shape, (1,))
    both = som_dataloaders(X.fillna(0.), y_names=['petal width (cm)', 'petal length (cm)'], valid_pct=0.2, seed=0, device='cpu')
    two = _fit(both, epochs=5, map_size=(4, 4), metrics=[rmse])
    fct.test_eq(two.get_preds()[0].shape, (30, 2))
    fct.test_eq(len(two.predict(X.iloc[0, :2])[0]), 2)

def test_string_categorical_and_integer_labels_agree():
    df = _iris()
    cat = df.assign(species=pd.Categorical(df.species))
    ints = df.assign(species=load_dataset('iris')[1].to_numpy())
    preds = []
    for d in (df, cat, ints):
        learn = _fit(som_dataloaders(d, y_names='species', valid_pct=0.2, seed=0, device='cpu'), epochs=5)
        preds.append(learn.get_preds()[0])
    fct.test_eq(preds[0], preds[1]); fct.test_eq(preds[0], preds[2])
    fct.test_eq(list(learn.dls.vocab), [0, 1, 2])

def test_clear_errors():
    df = _iris()
    fct.test_fail(lambda: som_dataloaders(df, y_names='kind'), contains="['kind'] are not columns")
    fct.test_fail(lambda: som_dataloaders(df.drop(columns='species'), y=np.zeros(10)), contains='y has 10 rows but the data has 150')
    fct.test_fail(lambda: som_dataloaders(df.assign(species='setosa'), y_names='species'), contains='only one class')
    fct.test_fail(lambda: som_dataloaders(df.to_numpy()[:, :4].astype(float), y_names='species'), contains='pass the targets as y=')
    fct.test_fail(lambda: som_dataloaders(df, y_names='species', y=df.species), contains='one of the two')
    fct.test_fail(lambda: som_dataloaders('rows.csv', y_names='species'), contains='in memory')
    dls = som_dataloaders(df, y_names='species', seed=0, device='cpu')
    fct.test_fail(lambda: dls.test_dl(df.assign(species='rose')), contains="['rose'] are not among the classes")
    fct.test_fail(lambda: som_learner(dls, supervised='knn'), contains='unknown supervised')

def test_export_load_and_mini_batches(tmp_path):
    df = _iris()
    learn = _fit(som_dataloaders(df, y_names='species', bs=32, seed=0, device='cpu'), epochs=5, accumulate=True)
    learn.export(tmp_path / 'clf.pkl')
    loaded = load_learner(tmp_path / 'clf.pkl')
    new = df.drop(columns='species')
    fct.test_eq(loaded.get_preds(dl=loaded.dls.test_dl(new))[0], learn.get_preds(dl=learn.dls.test_dl(new))[0])
    fct.test_eq(loaded.predict(new.iloc[3])[0], learn.predict(new.iloc[3])[0])
    fct.test_eq(len(loaded.dls.train.dataset), 0)  # the data stays behind

def test_unsupervised_learner_unchanged():
    X, _ = load_dataset('iris')
    learn = _fit(som_dataloaders(X, seed=0, device='cpu'), epochs=3, map_size=(4, 4))
    assert type(learn) is SomLearner
    pos, idx, w = learn.predict(X.iloc[0])
    fct.test_eq(idx, learn.bmus(X.iloc[[0]]).index[0])

def test_show_results_and_interpretation_of_an_xyf_map():
    df = _iris()
    learn = _fit(som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu'), epochs=5)
    assert learn.model.block is not None
    res = learn.show_results(max_n=5, show=False)
    fct.test_eq(list(res.columns), [*learn.dls.feature_names, 'species', 'species_pred', 'probability'])
    fct.test_eq(len(res), 5); assert set(res.species_pred) <= set(SPECIES)
    X = df.drop(columns='species')
    fct.test_eq(learn.codebook().shape, (64, 4))  # the features' columns, without the target block
    interp = SomInterpretation.from_learner(learn.feature_learner(), x=X, y=df.species)
    fct.test_eq(interp.bmu, learn.bmus(X).index)

def test_decoded_predictions_and_per_row_losses():
    df = _iris()
    learn = _fit(som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu'), epochs=5)
    with learn.no_bar(): probs, targs, decoded, losses = learn.get_preds(with_decoded=True, with_loss=True)
    fct.test_eq(decoded, probs.argmax(1))
    fct.test_close(losses, -probs[torch.arange(len(targs)), targs].clamp(min=1e-7).log())  # cross-entropy of each row
    with learn.no_bar(): fct.test_close(learn.validate()[0], losses.mean())

def test_two_numeric_targets_given_beside_the_data():
    X, _ = load_dataset('iris')
    y = X[['petal length (cm)', 'petal width (cm)']].to_numpy()
    dls = som_dataloaders(X.iloc[:, :2].to_numpy(), y=y, valid_pct=0.2, seed=0, device='cpu')
    fct.test_eq(dls.target_names, ['target0', 'target1'])
    fct.test_eq(list(dls.show_batch(max_n=2, show=False).columns), ['x0', 'x1', 'target0', 'target1'])
    learn = _fit(dls, epochs=5, map_size=(4, 4))
    fct.test_eq(learn.model.readout().predict(learn.bmus(X.iloc[:3, :2].to_numpy()).index).shape, (3, 2))
    fct.test_eq(list(learn.show_results(max_n=2, show=False).columns[-4:]), ['target0', 'target0_pred', 'target1', 'target1_pred'])

def test_float_labels_with_gaps_as_classes():
    X, y = load_dataset('iris')
    labels = y.astype(float); labels[::3] = np.nan  # pandas turns integer labels with gaps into floats
    dls = som_dataloaders(X.assign(label=labels), y_names='label', classes=True, seed=0, device='cpu')
    fct.test_eq(list(dls.vocab), [0., 1., 2.])
    fct.test_eq((dls.train.one_batch()[1] < 0).sum(), 50)
    fct.test_eq(som_dataloaders(X.assign(label=labels), y_names='label', seed=0, device='cpu').vocab, None)  # floats: numbers

def _penguins():
    return pytest.importorskip('palmerpenguins').load_penguins()

def test_labels_beside_a_real_table_with_strings_and_blanks(tmp_path):
    from fastsom.supervised import TableTargetDataLoaders
    df = _penguins()  # island and sex are strings; 11 rows have blanks
    dls = som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu')
    assert isinstance(dls, TableTargetDataLoaders)
    assert 'island=Biscoe' in dls.feature_names and 'species' not in dls.encoder.columns
    learn = som_learner(dls, map_size=(12, 12), metrics=[accuracy], seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    assert learn.model.block is not None  # every row labelled: xyf
    acc = learn.recorder.values[-1][-1]
    assert acc > 0.95, acc  # seeds 0-4 measured 0.986-1.000 on the 69 held-out rows (seed 0: 0.986)
    new = df.drop(columns='species')
    probs, targs = learn.get_preds(dl=dls.test_dl(new.iloc[:20]))
    assert targs is None
    fct.test_eq(probs.shape, (20, 3)); fct.test_close(probs.sum(1), torch.ones(20))
    row = new.iloc[3]  # every measurement and the sex blank: island and year only
    assert row.isna().sum() == 5
    label, idx, p = learn.predict(row)
    fct.test_eq(p, probs[3]); fct.test_eq(label, dls.vocab[idx]); fct.test_eq(learn.predict(df.iloc[3])[0], label)
    learn.export(tmp_path / 'penguins.pkl')
    loaded = load_learner(tmp_path / 'penguins.pkl')
    fct.test_eq(len(loaded.dls.train.dataset), 0)
    fct.test_eq(loaded.get_preds(dl=loaded.dls.test_dl(new))[0], learn.get_preds(dl=learn.dls.test_dl(new))[0])
    fct.test_eq(loaded.predict(new.iloc[[8]])[2], learn.predict(new.iloc[[8]])[2])  # sex blank

def test_partly_labelled_table_is_read_out():
    df = _penguins()
    df.loc[df.index[::2], 'species'] = None
    learn = _fit(som_dataloaders(df, y_names='species', valid_pct=0.2, seed=0, device='cpu'), map_size=(12, 12), sigma_end=1.)
    assert learn.model.block is None  # partly labelled: read off the map
    fct.test_eq(len(learn.dls.valid.dataset), 34)  # a fifth of the 172 labelled rows
    assert learn.validate()[1] > 0.9  # seeds 0-4 measured 1.000

def test_numeric_target_on_a_table_with_blanks():
    df = _penguins()  # body mass is blank on 2 rows: those are unlabelled
    dls = som_dataloaders(df, y_names='body_mass_g', valid_pct=0.2, seed=0, device='cpu')
    assert dls.vocab is None and 'species=Gentoo' in dls.feature_names
    fct.test_eq((len(dls.train.dataset), len(dls.valid.dataset)), (276, 68))  # the 2 unlabelled rows train
    learn = _fit(dls, map_size=(6, 6), sigma_end=1., metrics=[rmse, R2Score()])
    assert learn.model.block is None
    _, err, r2 = learn.validate()
    assert r2 > 0.75 and err < 400, (r2, err)  # seeds 0-4 measured R^2 0.823-0.875, rmse 299-348 g
    value, _, _ = learn.predict(df.drop(columns='body_mass_g').iloc[3])  # a row with blanks
    assert isinstance(value, float) and 2500 < value < 6500

def test_table_arguments_reach_the_encoder():
    df = _penguins()
    fct.test_eq('year=2007' in som_dataloaders(df, y_names='species', seed=0, device='cpu').feature_names, True)  # 3 values: a category
    dls = som_dataloaders(df, y_names='species', cont_names=['year'], seed=0, device='cpu')
    assert 'year' in dls.encoder.cont_names and 'year' in dls.feature_names
    X, y = load_dataset('iris')
    x = X.to_numpy().copy(); x[::7, 1] = np.nan  # an array with blanks, targets beside it
    arr = som_dataloaders(x, y=SPECIES[y.to_numpy()], seed=0, device='cpu')
    fct.test_eq(arr.feature_names, ['x0', 'x1', 'x2', 'x3'])
    fct.test_eq(arr.test_dl(x[:5]).one_batch()[0].isnan().sum(), 1)
