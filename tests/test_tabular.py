"Real tables: mixed and incomplete DataFrames train, search, impute, export and decode; bad tables get clear errors."
import warnings
import numpy as np, pandas as pd, pytest, torch
import fastcore.test as fct
from fastai.learner import load_learner
from fastsom.all import som_dataloaders, som_learner, load_dataset, SomInterpretation

def mixed_table(n=240, seed=0):
    "Two groups told apart by every column; each kind of column and of blank."
    rng = np.random.default_rng(seed)
    g = rng.integers(2, size=n)
    df = pd.DataFrame({'size': rng.normal(g * 4., 1.), 'weight': rng.normal(10 + g * 5., 1.),
                       'colour': np.where(g, 'red', 'blue').astype(object),
                       'grade': pd.Categorical(np.where(g, 'b', 'a'), categories=['a', 'b', 'c']),
                       'flag': pd.array(g.astype(bool), dtype='boolean'),
                       'count': pd.array(rng.integers(100, 200, size=n) + g * 100, dtype='Int64')})
    holes = rng.random((n, df.shape[1])) < 0.15
    holes[holes.all(1), 0] = False
    for j, c in enumerate(df.columns): df.loc[holes[:, j], c] = None
    return df, g

def trained(df, **kw):
    learn = som_learner(som_dataloaders(df, seed=0, device='cpu', **kw), map_size=(5, 5), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(15)
    return learn

def test_impute_keeps_the_table():
    df, g = mixed_table()
    learn = trained(df)
    filled = learn.impute(df)
    fct.test_eq(list(filled.columns), list(df.columns))
    assert filled.index.equals(df.index) and filled.dtypes.equals(df.dtypes)
    assert not filled.isna().any().any()
    for c in df.columns:
        present = df[c].notna()
        assert (filled.loc[present, c] == df.loc[present, c]).all(), c  # never changes a present cell
    gaps = df['colour'].isna().to_numpy()
    assert (filled['colour'][gaps] == np.where(g, 'red', 'blue')[gaps]).mean() > 0.9  # the groups are easy to tell apart

def test_bmus_export_and_interpretation(tmp_path):
    df, _ = mixed_table()
    learn = trained(df)
    rows = df.head(20)
    bmus = learn.bmus(rows)
    fct.test_eq(bmus.index, learn.get_preds(dl=learn.dls.test_dl(rows))[0])
    learn.path = tmp_path
    learn.export('table.pkl')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        back = load_learner(tmp_path / 'table.pkl')
    fct.test_eq(back.bmus(rows).index, bmus.index)
    fct.test_eq(back.impute(df), learn.impute(df))
    interp = SomInterpretation.from_learner(learn, x=df)
    cb = interp.codebook_df()
    fct.test_eq(list(cb.columns), list(df.columns))
    assert set(cb['colour']) <= {'red', 'blue'} and cb['grade'].dtype == df['grade'].dtype
    assert interp.hits().sum() == len(df)
    fig = interp.plot_component_planes()
    assert len([ax for ax in fig.axes if ax.get_title()]) == len(learn.dls.feature_names)
    fig.clf(); import matplotlib.pyplot as plt; plt.close(fig)  # leave no figure open for the tests after this one

def test_kinds_named_and_weights():
    df, _ = mixed_table()
    dls = som_dataloaders(df, valid_pct=0, cat_names=['count'], weights={'colour': 4.}, device='cpu')
    assert 'count' in dls.encoder.vocabs and dls.encoder.weights['colour'] == 4.
    dls = som_dataloaders(df[['size', 'count']].dropna(how='all'), cont_names=['size', 'count'], cat_names=[], device='cpu')
    fct.test_eq(dls.feature_names, ['size', 'count'])

def test_bad_tables():
    df, _ = mixed_table(40)
    learn = trained(df)
    with pytest.warns(UserWarning, match="'colour' has values training never saw, treated as missing: 'green'"):
        learn.bmus(df.head(5).assign(colour=['green', 'red', None, 'red', 'blue']))
    fct.test_fail(lambda: learn.bmus(df.drop(columns='size')), contains="lacks column 'size'")
    fct.test_fail(lambda: learn.impute(df.assign(size=np.inf)), contains="'size' has infinite values")
    empty_row = df.head(3).copy(); empty_row.loc[1, :] = None
    fct.test_fail(lambda: learn.bmus(empty_row), contains='every feature missing (first: index 1)')
    fct.test_fail(lambda: som_dataloaders(df.assign(size=np.nan)), contains="'size' has no value at all")
    fct.test_fail(lambda: som_dataloaders(df.assign(day=pd.Timestamp('2020-01-01'))), contains="'day' holds dates")
    fct.test_fail(lambda: som_dataloaders(df.assign(span=pd.Timedelta('1D'))), contains="'span' holds durations")
    fct.test_fail(lambda: som_dataloaders(df, cat_names=['nope']), contains="no column 'nope'")

def test_penguins():
    palmerpenguins = pytest.importorskip('palmerpenguins')
    df = palmerpenguins.load_penguins()
    learn = som_learner(som_dataloaders(df, seed=0, device='cpu'), map_size=(8, 8), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    filled = learn.impute(df)
    assert not filled.isna().any().any() and filled.dtypes.equals(df.dtypes)
    fct.test_eq(learn.bmus(df[df.isna().any(axis=1)]).index.shape, (int(df.isna().any(axis=1).sum()),))

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_imputation_beats_column_means(seed):
    "20% of standardised wine hidden at random: the SOM's RMSE was 0.76-0.80 of the column means' over mask seeds 0-2."
    x = load_dataset('wine')[0].to_numpy(dtype=np.float64)
    x = (x - x.mean(0)) / x.std(0)
    gone = np.random.default_rng(seed).random(x.shape) < 0.2
    df = pd.DataFrame(np.where(gone, np.nan, x), columns=[f'x{i}' for i in range(x.shape[1])])
    learn = som_learner(som_dataloaders(df, valid_pct=0, seed=seed, device='cpu'), map_size=(8, 8), seed=seed)
    with learn.no_bar(), learn.no_logging(): learn.fit(40)
    som_rmse = np.sqrt(np.mean((learn.impute(df).to_numpy()[gone] - x[gone]) ** 2))
    mean_rmse = np.sqrt(np.mean((np.nanmean(df.to_numpy(), 0)[None].repeat(len(x), 0)[gone] - x[gone]) ** 2))
    assert som_rmse < 0.85 * mean_rmse

@pytest.mark.parametrize('suffix', ['.csv', '.parquet'])
def test_table_files_stream_like_memory(tmp_path, suffix):
    "A CSV or Parquet table with strings and blanks, read in blocks with `ExactBatchMap`, trains like the table in memory."
    df, _ = mixed_table(600)
    df = df[['size', 'weight', 'colour']].dropna(how='all').reset_index(drop=True)
    path = tmp_path / f'table{suffix}'
    df.to_csv(path, index=False) if suffix == '.csv' else df.to_parquet(path)
    learners = []
    for data, bs in ((df, None), (path, 128)):
        dls = som_dataloaders(data, valid_pct=0, bs=bs, device='cpu', folder=tmp_path)
        learn = som_learner(dls, map_size=(4, 4), seed=0, mass_floor=0., metrics=[])
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
        learners.append(learn)
    assert len(learners[1].dls.train) == 5 and any(type(cb).__name__ == 'ExactBatchMap' for cb in learners[1].cbs)
    fct.test_close(learners[0].som.weight, learners[1].som.weight, eps=1e-4)
    fct.test_eq(learners[1].impute(df).isna().sum().sum(), 0)

def test_cli_trains_on_strings_and_blanks(tmp_path):
    import subprocess, sys
    from pathlib import Path
    df, _ = mixed_table(200)
    df[['size', 'weight', 'colour', 'grade']].dropna(how='all').to_csv(tmp_path / 'mixed.csv', index=False)
    r = subprocess.run([str(Path(sys.executable).parent / 'fastsom'), 'train', 'mixed.csv', '--map', '4x4', '--epochs', '2',
                        '--out', 'run'], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    learn = load_learner(tmp_path / 'run/model.pkl')
    assert learn.dls.encoder.cat_names == ['colour', 'grade'] and not learn.impute(df).isna()[['size', 'colour']].any().any()

def _penguins_learner(epochs=5, **kw):
    palmerpenguins = pytest.importorskip('palmerpenguins')
    df = palmerpenguins.load_penguins()
    learn = som_learner(som_dataloaders(df.drop(columns='species'), seed=0, device='cpu', **kw), map_size=(5, 6), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn, df

def test_projection_draws_incomplete_rows_and_unlabelled_samples():
    "Every penguin on the BMU of its present cells; a label column with blanks (sex) draws its unlabelled rows grey."
    import matplotlib.pyplot as plt
    learn, df = _penguins_learner()
    x = df.drop(columns='species')
    interp = SomInterpretation.from_learner(learn, x=x, y=df.sex)            # 11 penguins have no sex
    fig = interp.plot_projection(spread=.3)
    from matplotlib.collections import PathCollection
    dots, = [c.get_offsets() for c in fig.axes[0].collections if isinstance(c, PathCollection)]  # the scatter
    fct.test_eq(len(dots), len(df))
    near = np.linalg.norm(dots[:, None] - learn.som.grid.coords().numpy()[None], axis=2).argmin(1)
    fct.test_eq(near, learn.bmus(x).index.numpy())                            # each dot within its masked BMU's cell
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    fct.test_eq(legend, ['female', 'male', 'no label'])
    plt.close(fig)
    lm = interp.label_map()                                                   # the label map counts the labelled rows only
    fct.test_eq(list(lm.classes), ['female', 'male'])
    known = df.sex.notna().to_numpy()
    fct.test_eq(lm.label, SomInterpretation.from_learner(learn, x=x[known], y=df.sex[known]).label_map().label)
    fct.test_fail(lambda: SomInterpretation.from_learner(learn, x=x, y=[None] * len(df)), contains='no label at all')
    assert interp.majority_label(x.head(3)).tolist() == [['female', 'male'][k] for k in lm.label.reshape(-1)[learn.bmus(x.head(3)).index]]

def test_impute_a_column_with_no_value_in_the_new_rows():
    "A column blank in every new row (read as float64 NaN, or object None) is filled in the training column's kind."
    learn, df = _penguins_learner(3)
    x = df.drop(columns='species').head(6)
    for blank in (np.nan, None):
        filled = learn.impute(x.assign(sex=blank, body_mass_g=blank))
        assert set(filled.sex) <= {'female', 'male'} and filled.sex.dtype == df.sex.dtype
        assert filled.body_mass_g.dtype == np.float64 and filled.body_mass_g.between(2700, 6300).all()
        fct.test_eq(learn.bmus(x.assign(sex=blank)).index, learn.bmus(x.assign(sex=np.nan)).index)

def test_supervised_table_imputes_and_interprets():
    "A map trained with labels beside a mixed table (xyf): impute and the features-only learner read the table."
    import matplotlib.pyplot as plt
    palmerpenguins = pytest.importorskip('palmerpenguins')
    df = palmerpenguins.load_penguins()
    learn = som_learner(som_dataloaders(df, y_names='species', seed=0, device='cpu'), map_size=(4, 5), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    x = df.drop(columns='species')
    filled = learn.impute(x)
    assert not filled.isna().any().any() and filled.dtypes.equals(x.dtypes)
    feat = learn.feature_learner()
    fct.test_eq(feat.bmus(x).index, learn.bmus(x).index)
    interp = SomInterpretation.from_learner(feat, x=x, y=df.species)
    fct.test_eq(interp.hits().sum(), len(df))
    fct.test_eq(list(interp.codebook_df().columns), list(x.columns))
    for interp in (SomInterpretation.from_learner(learn, x=x, y=df.species), SomInterpretation.from_learner(learn)):  # its features' map
        fct.test_eq(interp.bmu, feat.bmus(x).index if len(interp) == len(x) else interp.bmu)
        for fig in (interp.plot_projection(), interp.plot_component_planes()): plt.close(fig)   # they draw; none left open
        fct.test_eq(interp.umatrix().shape, (4, 5))

def test_one_row_as_a_series_and_rows_as_an_array():
    "`df.iloc[i]` (a Series of mixed values, dtype object) and `df.to_numpy()` read like the table's rows."
    learn, df = _penguins_learner(3)
    x = df.drop(columns='species')
    idx = learn.bmus(x).index
    fct.test_eq(learn.predict(x.iloc[0])[1], idx[0])
    fct.test_eq(learn.bmus(x.iloc[5]).index, idx[5:6])
    fct.test_eq(learn.bmus(x.to_numpy()).index, idx)
    fct.test_eq(SomInterpretation.from_learner(learn, x=x.to_numpy()).bmu, idx)
    row = learn.impute(x.iloc[3])                                    # penguin 3: every measurement blank
    assert isinstance(row, pd.Series) and row.notna().all() and row['island'] == x.iloc[3]['island']
    fct.test_eq(row.to_dict(), learn.impute(x.iloc[[3]]).iloc[0].to_dict())
    fct.test_eq(learn.impute(x.to_numpy()).to_numpy(), learn.impute(x).to_numpy())

def test_impute_keeps_whole_numbers_whole():
    "An integer column read back with blanks (pandas makes it float64) is filled with whole numbers, as it was trained."
    learn, df = _penguins_learner(3, cont_names=['year', 'body_mass_g'], cat_names=['island'])
    new = df.head(8).assign(year=df.year.head(8).astype(float).mask([True, False] * 4))
    filled = learn.impute(new).year
    assert filled.dtype == np.float64 and (filled == filled.round()).all() and filled.between(2007, 2009).all()

def test_show_batch_shows_the_table():
    "`dls.show_batch()` shows rows as the table had them: its columns, categories by name, blanks blank."
    df, _ = mixed_table(60)
    dls = som_dataloaders(df, valid_pct=0, device='cpu')
    shown = dls.show_batch(max_n=60, show=False)
    fct.test_eq(list(shown.columns), list(df.columns))
    fct.test_eq(shown['colour'].isna().to_numpy(), df['colour'].isna().to_numpy())
    assert (shown['colour'].dropna() == df['colour'].dropna()).all()
    fct.test_close(shown['size'].dropna().to_numpy(), df['size'].dropna().to_numpy(), eps=1e-4)

def test_column_kinds_named_clearly():
    "A column named as both kinds, a name given as a string, numbers stored as text: each is said, not guessed."
    df, _ = mixed_table(60)
    fct.test_fail(lambda: som_dataloaders(df, cat_names=['count'], cont_names=['count', 'size']), contains="'count' is named in both cat_names and cont_names")
    dls = som_dataloaders(df.dropna(subset=['size', 'colour'], how='all'), cat_names='colour', cont_names='size', device='cpu')
    fct.test_eq((dls.encoder.columns, dls.encoder.cat_names), (['size', 'colour'], ['colour']))
    ages = df.assign(age=np.arange(60).astype(str)).astype({'age': object})
    ages.loc[::10, 'age'] = '?'                                               # a CSV's '?' for a blank: the column reads as text
    with pytest.warns(UserWarning, match=r"column 'age' holds text, so it is categorical, but 54 of its 60 values are numbers \(others: '\?'\)"):
        som_dataloaders(ages, valid_pct=0, device='cpu')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        som_dataloaders(ages, cat_names=['age'], valid_pct=0, device='cpu')             # named categorical: no warning
    learn = trained(df)
    with pytest.raises(TypeError, match=r"column 'size' was continuous in training but is not numeric here \(\w+\), with values such as '\?'"):
        learn.bmus(df.head(4).assign(size=['1.5', '?', '2', '3']))

def test_a_map_of_complete_numbers_reads_rows_with_gaps():
    "Trained on complete numbers (not the table path), a map still finds and fills new rows with blank cells."
    from fastsom.missing import masked_bmus
    x = load_dataset('wine')[0]
    learn = som_learner(som_dataloaders(x, seed=0, device='cpu'), map_size=(4, 5), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    holed = x.mask(np.random.default_rng(0).random(x.shape) < 0.3)
    idx = learn.bmus(holed).index
    fct.test_eq(idx, masked_bmus(learn.som, learn.dls.normalizer.encode(torch.tensor(holed.to_numpy(np.float32)))))
    fct.test_eq(learn.get_preds(dl=learn.dls.test_dl(holed))[0], idx)
    filled = learn.impute(holed[holed.columns[::-1]])                         # by name, in any order
    assert not filled.isna().any().any() and list(filled.columns) == list(holed.columns[::-1])
    fct.test_eq(filled.to_numpy()[holed.notna().to_numpy()[:, ::-1]], holed[holed.columns[::-1]].to_numpy()[holed.notna().to_numpy()[:, ::-1]])
    fct.test_close(filled.to_numpy()[0], np.where(holed.isna().to_numpy()[0], learn.codebook()[idx[0]].numpy(), holed.to_numpy()[0])[::-1], eps=1e-3)
    arr = learn.impute(holed.to_numpy())
    assert isinstance(arr, np.ndarray) and not np.isnan(arr).any()
    fct.test_fail(lambda: learn.bmus(x.head(3).assign(alcohol=np.inf)), contains='infinite values in 3 rows')
    fct.test_fail(lambda: learn.bmus(x.head(3) * np.nan), contains='every feature missing')

def test_impute_a_category_the_new_column_does_not_list():
    "New rows whose categorical column lists fewer categories than training: a filled category is added to its list."
    df, g = mixed_table()
    learn = trained(df)
    new = df.head(20).assign(grade=pd.Categorical(np.where(g[:20], 'b', None), categories=['b']))
    filled = learn.impute(new).grade
    assert filled.notna().all() and set(filled) <= {'a', 'b'} and (filled[g[:20] == 1] == 'b').all()
    fct.test_eq(list(filled.cat.categories[:1]), ['b'])                       # its own categories first, then the added ones

def test_show_results_of_a_table():
    "`learn.show_results()` on a table: its columns, and each row's distance to its BMU over the cells it has (not NaN)."
    from fastsom.metrics import bmu_distances
    learn, df = _penguins_learner(3, valid_pct=0)
    x = df.drop(columns='species')
    res = learn.show_results(ds_idx=0, max_n=len(df), shuffle=False, show=False)
    fct.test_eq(list(res.columns), list(x.columns) + ['bmu_row', 'bmu_col', 'distance'])
    enc = learn.dls.encode(x)
    fct.test_close(res.distance.to_numpy(), bmu_distances(enc, learn.codebook(decoded=False), learn.bmus(x).index).numpy(), eps=1e-4)
