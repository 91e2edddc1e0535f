"Training from files on disk, read in blocks: the same map as from memory."
import numpy as np, pytest, torch
import fastcore.test as fct
from fastsom.all import som_dataloaders, som_learner, ExactBatchMap, load_dataset

X = load_dataset('wine')[0]

def fitted(data, **kw):
    learn = som_learner(som_dataloaders(data, valid_pct=0, device='cpu', **kw), map_size=(4, 5), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(4)
    return learn

@pytest.mark.parametrize('kind', ['npy', 'csv', 'parquet'])
def test_file_training_equals_memory(tmp_path, kind):
    path = tmp_path / f'wine.{kind}'
    if kind == 'npy': np.save(path, X.to_numpy(np.float32))
    elif kind == 'csv': X.to_csv(path, index=False)
    else: X.to_parquet(path)
    from_file = fitted(path, bs=50, folder=tmp_path)
    assert len(from_file.dls.train) == 4 and any(isinstance(cb, ExactBatchMap) for cb in from_file.cbs)
    in_memory = fitted(X.to_numpy(np.float32))
    assert len(in_memory.dls.train) == 1
    fct.test_close(from_file.codebook(), in_memory.codebook(), eps=1e-3)
    if kind != 'npy': fct.test_eq(from_file.dls.feature_names, list(X.columns))

def test_bad_files(tmp_path):
    fct.test_fail(lambda: som_dataloaders(tmp_path / 'missing.npy'), contains='no such file')
    (tmp_path / 'x.txt').write_text('1,2')
    fct.test_fail(lambda: som_dataloaders(tmp_path / 'x.txt'), contains="unsupported file type '.txt'")
    bad = X.to_numpy(np.float32).copy(); bad[100, 3] = np.inf
    np.save(tmp_path / 'bad.npy', bad)
    fct.test_fail(lambda: som_dataloaders(tmp_path / 'bad.npy'), contains='infinite values')
    np.save(tmp_path / 'flat.npy', np.zeros(5))
    fct.test_fail(lambda: som_dataloaders(tmp_path / 'flat.npy'), contains='2-D')

def test_a_learner_trained_from_a_file_exports_and_loads(tmp_path):
    "The exported learner keeps empty loaders of the file's rows: reading zero rows must work."
    from fastai.learner import load_learner
    np.save(tmp_path / 'x.npy', np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32))
    learn = som_learner(som_dataloaders(tmp_path / 'x.npy', bs=200), map_size=(3, 3), seed=0)
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    learn.export(tmp_path / 'som.pkl')
    loaded = load_learner(tmp_path / 'som.pkl')
    fct.test_eq(loaded.bmus(np.zeros((2, 3), dtype=np.float32)).index, learn.bmus(np.zeros((2, 3), dtype=np.float32)).index)

def test_parquet_table_reads_its_kinds_like_pandas(tmp_path):
    "A Parquet table streamed in blocks has the column kinds it has read by pandas: nullable integers, booleans, categories."
    import pandas as pd
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({'a': rng.normal(size=n), 'i': pd.array(rng.integers(0, 5, n), dtype='Int64'),
                       'b': pd.array(rng.random(n) < .5, dtype='boolean'), 'k': pd.Categorical(rng.choice(['x', 'y'], n), categories=['x', 'y', 'z'])})
    df.loc[::7, 'i'] = pd.NA; df.loc[::5, 'b'] = pd.NA; df.loc[::4, 'k'] = np.nan
    df.to_parquet(tmp_path / 't.parquet', row_group_size=100)
    streamed = som_dataloaders(tmp_path / 't.parquet', valid_pct=0, bs=64, device='cpu', folder=tmp_path).encoder
    read = som_dataloaders(pd.read_parquet(tmp_path / 't.parquet'), valid_pct=0, device='cpu').encoder
    fct.test_eq((streamed.cont_names, streamed.vocabs, streamed.dtypes), (read.cont_names, read.vocabs, read.dtypes))
    fct.test_eq(streamed.vocabs['i'], [0, 1, 2, 3, 4])   # few whole numbers: categories, as fastai's cont_cat_split makes them

def test_text_in_a_later_chunk_of_a_numeric_column(tmp_path):
    "A CSV whose numeric column holds text further down (a chunk after the one that set its kind): the error names the value and row."
    import pandas as pd
    from fastsom.tabular import table_to_rows
    df = pd.DataFrame({'a': np.arange(200.), 'k': ['x', 'y'] * 100}).astype({'a': object})
    df.loc[150, 'a'] = '?'
    df.to_csv(tmp_path / 't.csv', index=False)
    fct.test_fail(lambda: table_to_rows(tmp_path / 't.csv', tmp_path, chunk_rows=100),
                  contains="column 'a' is not numeric (str), with values such as '?' (row 150)")


def test_npy_with_blank_cells_trains_like_the_same_rows_in_memory(tmp_path):
    "A .npy file with NaN cells streams in blocks on the masked path: same statistics and map as the rows in memory."
    x = X.to_numpy(np.float32)
    holed = np.where(np.random.default_rng(0).random(x.shape) < 0.2, np.nan, x).astype(np.float32)
    np.save(tmp_path / 'holed.npy', holed)
    dls = som_dataloaders(tmp_path / 'holed.npy', bs=50, valid_pct=0)
    fct.test_close(dls.normalizer.mean, torch.from_numpy(np.nanmean(holed, 0)), eps=1e-4)
    fct.test_close(dls.normalizer.std, torch.from_numpy(np.nanstd(holed, 0)), eps=1e-4)
    from_file = som_learner(dls, map_size=(5, 5), seed=0, metrics=[])
    in_memory = som_learner(som_dataloaders(holed, valid_pct=0, seed=0), map_size=(5, 5), seed=0, metrics=[])
    for learn in (from_file, in_memory):
        with learn.no_bar(), learn.no_logging(): learn.fit(3)
    fct.test_close(from_file.som.weight, in_memory.som.weight, eps=1e-4)
    fct.test_eq(from_file.bmus(holed).index, in_memory.bmus(holed).index)
    holed[:, 2] = np.nan
    np.save(tmp_path / 'blank_column.npy', holed)
    fct.test_fail(lambda: som_dataloaders(tmp_path / 'blank_column.npy'), contains='columns [2] have no present value')
