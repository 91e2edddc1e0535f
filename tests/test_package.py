"The built package exposes what the notebooks define: a missing `#| export` shows up here."
import ast, importlib, json
from pathlib import Path
import fastsom.all

NBS = Path(__file__).parent.parent / 'nbs'

def exported_names(nb):
    cells = json.loads(nb.read_text())['cells']
    names = []
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or not src.lstrip().startswith('#| export'): continue
        for node in ast.parse(src).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith('_'): names.append(node.name)
    return names

def test_every_exported_definition_is_importable():
    for nb in NBS.glob('*.ipynb'):
        cells = json.loads(nb.read_text())['cells']
        mod = next((''.join(c['source']).split()[-1] for c in cells if '#| default_exp' in ''.join(c['source'])), None)
        if mod is None: continue
        module = importlib.import_module(f'fastsom.{mod}')
        for name in exported_names(nb):
            assert hasattr(module, name), f'{name} of {nb.name} is missing from fastsom.{mod}'

def test_star_import_exposes_the_quick_start():
    ns = {}
    exec('from fastsom.all import *', ns)
    for name in ['som_dataloaders', 'som_learner', 'quantization_error', 'topographic_error', 'Som', 'AttrScheduler', 'load_dataset']:
        assert name in ns, name

def test_no_global_state_in_the_package():
    "The package never shows a plot, imports fastai.vision, or seeds a generator it does not own (torch's, NumPy's, Python's)."
    import re
    from pathlib import Path
    banned = re.compile(r"plt\.show\(|fastai\.vision|torch\.(random\.|cuda\.)?manual_seed(_all)?\(|set_seed\(|np\.random\.seed\(|random\.seed\(")
    found = [f"{path.name}:{i}: {line.strip()}" for path in sorted(Path(fastsom.__file__).parent.rglob('*.py'))
             for i, line in enumerate(path.read_text().splitlines(), 1) if banned.search(line)]
    assert not found, found
