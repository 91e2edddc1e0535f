"The `fastsom` command, as a user runs it."
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import fastcore.test as fct
from fastai.learner import load_learner

def fastsom(*args, cwd):
    "Run the installed `fastsom` command (the one next to this Python)."
    return subprocess.run([str(Path(sys.executable).parent / 'fastsom'), *args], cwd=cwd, capture_output=True, text=True)

def test_train_csv_and_refuse_overwrite(tmp_path):
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=['a', 'b', 'c']).assign(label='x')
    df.to_csv(tmp_path / 'data.csv', index=False)
    r = fastsom('train', 'data.csv', '--map', '4x6', '--epochs', '3', '--out', 'runs/x', '--drop', 'label', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'epoch 3/3' in r.stdout and 'quantization error' in r.stdout
    info = json.loads((tmp_path / 'runs/x/metrics.json').read_text())
    fct.test_eq((info['samples'], info['features'], info['map']), (300, 3, [4, 6]))
    assert load_learner(tmp_path / 'runs/x/model.pkl').som.map_size == (4, 6)
    before = (tmp_path / 'runs/x/model.pkl').read_bytes()
    r = fastsom('train', 'data.csv', '--out', 'runs/x', '--drop', 'label', cwd=tmp_path)
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
        r = fastsom('train', '--epochs', bad, cwd=tmp_path)
        assert r.returncode == 2 and 'argument --epochs: must be at least 1' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_loaded_run_lives_in_its_folder(tmp_path):
    r = fastsom('train', 'iris', '--epochs', '1', '--map', '3x3', '--out', 'runs/x', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    learn = load_learner(tmp_path / 'runs/x/model.pkl')
    fct.test_eq(learn.path, (tmp_path / 'runs/x').absolute())
    learn.export('again.pkl')
    assert (tmp_path / 'runs/x/again.pkl').exists() and not list(tmp_path.glob('runs/.*'))
