"""Print constraints.txt: every installed package that `fastsom[dev]` needs, recursively, pinned to its installed version.

Usage, inside the .venv that `bash tools/setup` made and `bash tools/test` passed in:
    python tools/lock.py > constraints.txt
"""
from importlib.metadata import distribution, version, PackageNotFoundError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Every package that `bash tools/setup` installs (fastsom[dev] and all it needs), at the versions CI last ran with,
# so that a fresh machine installs what CI saw. tools/setup passes this file with -c to every pip install.
# Update on purpose: install the new versions in .venv, run `bash tools/test`, then regenerate this list
# (`python tools/lock.py > constraints.txt`) and commit it with the test run that passed.
# torch is the CPU build (2.13.0+cpu): a plain install would pull a CUDA build of several GB."""

def closure(name:str, extras=()) -> dict:
    "Installed distributions that `name[extras]` requires, recursively: canonical name -> (name, version)."
    found, extras_of = {}, {}
    def visit(name, extras):
        key = canonicalize_name(name)
        try: d = distribution(name)
        except PackageNotFoundError: raise SystemExit(f"{name} is required but not installed: run bash tools/setup first")
        new_extras = set(extras) - extras_of.get(key, set())
        if key in found and not new_extras: return
        found[key] = (d.metadata['Name'], d.version)
        extras_of.setdefault(key, set()).update(extras)
        envs = [{'extra': e} for e in ['', *extras_of[key]]]
        for r in map(Requirement, d.requires or []):
            if r.marker is None or any(r.marker.evaluate(env) for env in envs): visit(r.name, r.extras)
    visit(name, extras)
    return found

if __name__ == '__main__':
    pins = closure('fastsom', ['dev'])
    pins.pop('fastsom')
    print(HEADER)
    print(f"pip=={version('pip')}")
    for name, ver in sorted(pins.values(), key=lambda p: canonicalize_name(p[0])): print(f"{name}=={ver.split('+')[0]}")
