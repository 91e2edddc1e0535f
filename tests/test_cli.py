"The `fastsom` command, as a user runs it."
import contextlib, io, json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import fastcore.test as fct
from fastai.learner import load_learner
from fastsom.cli import main

def fastsom_command(*args, cwd):
    "Run the installed `fastsom` command (the one next to this Python)."
    return subprocess.run([str(Path(sys.executable).parent / 'fastsom'), *args], cwd=cwd, capture_output=True, text=True)

def fastsom(*args, cwd):
    "Run the command's `main` in this process (seconds faster than a new Python), in `cwd`, its output and exit status captured."
    out, err, code, before = io.StringIO(), io.StringIO(), 0, os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: main(list(args))
            except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
    finally: os.chdir(before)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

def test_train_csv_and_refuse_overwrite(tmp_path):
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=['a', 'b', 'c']).assign(label='x')
    df.to_csv(tmp_path / 'data.csv', index=False)
    r = fastsom_command('train', 'data.csv', '--map', '4x6', '--epochs', '3', '--out', 'runs/x', '--drop', 'label', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'epoch 3/3' in r.stdout and 'quantization error' in r.stdout
    info = json.loads((tmp_path / 'runs/x/metrics.json').read_text())
    fct.test_eq((info['samples'], info['features'], info['map']), (300, 3, [4, 6]))
    assert load_learner(tmp_path / 'runs/x/model.pkl').som.map_size == (4, 6)
    before = (tmp_path / 'runs/x/model.pkl').read_bytes()
    r = fastsom_command('train', 'data.csv', '--out', 'runs/x', '--drop', 'label', cwd=tmp_path)
    assert r.returncode == 2 and 'already holds a run' in r.stderr
    fct.test_eq((tmp_path / 'runs/x/model.pkl').read_bytes(), before)

def test_bad_input_messages(tmp_path):
    pd.DataFrame({'a': [1., 2., 3.], 'kind': [None] * 3}).to_csv(tmp_path / 'mixed.csv', index=False)  # strings and blanks train
    r = fastsom('train', 'mixed.csv', '--out', 'o', cwd=tmp_path)
    assert r.returncode == 2 and "column 'kind' has no value at all" in r.stderr
    r = fastsom('train', 'digits', '--map', '0x5', cwd=tmp_path)
    assert r.returncode == 2 and 'map size must be positive' in r.stderr
    assert not (tmp_path / 'o').exists()

def test_default_run_on_bundled_data(tmp_path):
    r = fastsom('train', '--epochs', '2', '--map', '6x6', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run, = (tmp_path / 'runs').iterdir()
    assert run.name.startswith('digits-') and (run / 'model.pkl').exists()

def test_drop_never_swallows_the_data_argument(tmp_path):
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)), columns=['a', 'b']).assign(species='x', island='y')
    df.to_csv(tmp_path / 'penguins.csv', index=False)
    r = fastsom('train', '--drop', 'species', 'island', 'penguins.csv', '--epochs', '1', cwd=tmp_path)
    assert r.returncode == 2 and 'unrecognized arguments: penguins.csv' in r.stderr, r.stderr
    r = fastsom('train', '--drop', 'species', cwd=tmp_path)        # no data named: digits, which has no such column
    assert r.returncode == 2 and 'not in digits: species' in r.stderr, r.stderr
    assert not (tmp_path / 'runs').exists()
    r = fastsom('train', '--drop', 'species,island', 'penguins.csv', '--epochs', '1', '--map', '3x3', '--out', 'a', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = fastsom('train', '--drop', 'species', '--drop', 'island', 'penguins.csv', '--epochs', '1', '--map', '3x3', '--out', 'b', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fct.test_eq(json.loads((tmp_path / 'b/metrics.json').read_text())['features'], 2)

def test_epochs_must_be_positive(tmp_path):
    for bad in ('0', '-3'):
        r = fastsom_command('train', '--epochs', bad, cwd=tmp_path)
        assert r.returncode == 2 and 'argument --epochs: must be at least 1' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_loaded_run_lives_in_its_folder(tmp_path):
    r = fastsom('train', 'iris', '--epochs', '1', '--map', '3x3', '--out', 'runs/x', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    learn = load_learner(tmp_path / 'runs/x/model.pkl')
    fct.test_eq(learn.path, (tmp_path / 'runs/x').absolute())
    learn.export('again.pkl')
    assert (tmp_path / 'runs/x/again.pkl').exists() and not list(tmp_path.glob('runs/.*'))

def _penguin_like(tmp_path, n=90):
    "A small mixed table: numbers with blanks, a text column, and a label column with text and blanks."
    rng = np.random.default_rng(0)
    species = rng.choice(['Adelie', 'Gentoo', 'Chinstrap'], n)
    df = pd.DataFrame({'bill': rng.normal(size=n) + (species == 'Gentoo') * 3, 'mass': rng.normal(size=n),
                       'island': rng.choice(['Biscoe', 'Dream'], n), 'species': species})
    df.loc[::6, 'bill'] = np.nan
    df.loc[::9, 'species'] = None
    df.to_csv(tmp_path / 'p.csv', index=False)
    return df

def test_label_draws_the_label_map(tmp_path):
    df = _penguin_like(tmp_path)
    for i, args in enumerate([('--label', 'species', 'p.csv'), ('p.csv', '--label', 'species')]):
        r = fastsom('train', *args, '--map', '4x4', '--epochs', '2', '--out', f'r{i}', cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f'r{i}/labels.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        info = json.loads((tmp_path / f'r{i}/metrics.json').read_text())
        fct.test_eq((info['features'], info['label'], info['labelled']), (3, 'species', int(df.species.notna().sum())))
        fct.test_eq(load_learner(tmp_path / f'r{i}/model.pkl').dls.encoder.columns, ['bill', 'mass', 'island'])
    r = fastsom('train', 'p.csv', '--label', 'kind', '--out', 'bad', cwd=tmp_path)
    assert r.returncode == 2 and "'kind', which is not in p.csv; its columns are: bill, mass, island, species" in r.stderr, r.stderr
    assert not (tmp_path / 'bad').exists()

def test_apply_writes_bmus_and_imputes(tmp_path):
    df = _penguin_like(tmp_path)
    r = fastsom('train', 'p.csv', '--label', 'species', '--map', '4x4', '--epochs', '3', '--out', 'run', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    new = df.drop(columns='species').iloc[::-1].iloc[:30][['island', 'mass', 'bill']]   # other order, reversed rows
    new.to_csv(tmp_path / 'new.csv', index=False)
    r = fastsom('apply', 'run', 'new.csv', '--out', 'bmu.csv', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = pd.read_csv(tmp_path / 'bmu.csv')
    fct.test_eq(res.columns.tolist(), ['row', 'bmu_row', 'bmu_col', 'distance'])
    learn = load_learner(tmp_path / 'run/model.pkl')
    b = learn.bmus(new.reset_index(drop=True))
    fct.test_eq(res[['bmu_row', 'bmu_col']].to_numpy(), b.position.numpy())
    assert (res.distance >= 0).all() and res.row.tolist() == list(range(30))
    r = fastsom('apply', 'run', 'new.csv', '--out', 'bmu.csv', cwd=tmp_path)     # no overwrite without --force
    assert r.returncode == 2 and 'already exists' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    for i, args in enumerate([('--impute', 'run/model.pkl', 'new.csv'), ('run/model.pkl', 'new.csv', '--impute')]):
        r = fastsom('apply', *args, '--out', f'filled{i}.csv', cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        filled = pd.read_csv(tmp_path / f'filled{i}.csv', index_col='row')
        fct.test_eq(int(filled.isna().sum().sum()), 0)
        present = new.bill.notna().to_numpy()
        fct.test_close(filled.bill.to_numpy()[present], new.bill.to_numpy()[present])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.')) == []   # no temporary file left

def test_apply_errors(tmp_path):
    df = _penguin_like(tmp_path)
    assert fastsom('train', 'p.csv', '--drop', 'species', '--map', '3x3', '--epochs', '1', '--out', 'run', cwd=tmp_path).returncode == 0
    df.drop(columns=['species', 'mass']).to_csv(tmp_path / 'short.csv', index=False)
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'fake.pkl').write_text('not a pickle')
    torch.save({'a': 1}, tmp_path / 'dict.pkl')
    for args, msg in [(('run', 'short.csv', '--out', 'o.csv'), 'mass'),
                      (('run', 'notes.txt', '--out', 'o.csv'), "unsupported file type '.txt'"),
                      (('fake.pkl', 'p.csv', '--out', 'o.csv'), 'is not a model saved by fastsom'),
                      (('dict.pkl', 'p.csv', '--out', 'o.csv'), "dict.pkl is not a model saved by fastsom"),
                      (('nowhere', 'p.csv', '--out', 'o.csv'), 'no model at nowhere: pass a run folder'),
                      (('run', 'p.csv', '--out', 'o.txt'), '--out must end in .csv or .parquet')]:
        r = fastsom('apply', *args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith('fastsom: error: ') and msg in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    assert not list(tmp_path.glob('o.*'))

@pytest.mark.parametrize('suffix', ['csv', 'parquet'])
def test_long_table_shows_progress(tmp_path, suffix):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(70_000, 2)).round(3), columns=['a', 'b']).assign(k=rng.choice(['u', 'v'], 70_000))
    df.loc[::5, 'a'] = np.nan
    write = lambda d, name: d.to_csv(tmp_path / name, index=False) if suffix == 'csv' else d.to_parquet(tmp_path / name, index=False)
    write(df, f'big.{suffix}'); write(df.iloc[:100], f'small.{suffix}')
    r = fastsom('train', f'big.{suffix}', '--map', '2x2', '--epochs', '1', '--out', 'big', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith(f'reading big.{suffix}')]
    assert len(lines) == 2 and lines[0].endswith('MB): 65,536 rows') and lines[1].endswith('MB): 70,000 rows'), r.stderr
    assert 'reading' not in r.stdout
    fct.test_eq(json.loads((tmp_path / 'big/metrics.json').read_text())['samples'], 70_000)
    r = fastsom('apply', 'big', f'big.{suffix}', '--out', 'b.parquet', cwd=tmp_path)   # apply reads the same way
    assert r.returncode == 0 and r.stderr.count(f'reading big.{suffix}') == 2, r.stderr
    fct.test_eq(len(pd.read_parquet(tmp_path / 'b.parquet')), 70_000)
    r = fastsom('apply', 'big', f'small.{suffix}', '--out', 's.csv', cwd=tmp_path)
    assert r.returncode == 0 and 'reading' not in r.stderr, r.stderr

def test_apply_a_map_of_complete_numbers_to_rows_with_blanks(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=['a', 'b', 'c'])
    df.to_csv(tmp_path / 'full.csv', index=False)
    r = fastsom('train', 'full.csv', '--map', '3x3', '--epochs', '2', '--out', 'run', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    holed = df.head(20).mask(rng.random((20, 3)) < 0.3)
    holed.loc[0] = [np.nan, 1., np.nan]
    holed.to_csv(tmp_path / 'holed.csv', index=False)
    for args, out in [((), 'b.csv'), (('--impute',), 'f.csv')]:
        r = fastsom('apply', 'run', 'holed.csv', *args, '--out', out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    res, filled = pd.read_csv(tmp_path / 'b.csv'), pd.read_csv(tmp_path / 'f.csv', index_col='row')
    assert res.distance.notna().all() and not filled.isna().any().any()
    fct.test_close(filled.to_numpy()[holed.notna().to_numpy()], holed.to_numpy()[holed.notna().to_numpy()])

def test_label_also_dropped(tmp_path):
    _penguin_like(tmp_path)
    r = fastsom('train', 'p.csv', '--drop', 'species', '--label', 'species', '--out', 'o', cwd=tmp_path)
    assert r.returncode == 2 and "--label column 'species' is also in --drop" in r.stderr, r.stderr
