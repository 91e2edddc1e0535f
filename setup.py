"""The compiled part of fastsom: one optional C extension, `fastsom._native` (the CPU search's row minimum,
the per-unit sums of a batch and the split of rows with missing cells).

Everything else is in pyproject.toml. Where no C compiler works, the build goes on without it and fastsom
uses torch's own steps, which give the same units (`fastsom.native`)."""
import sys
from setuptools import Extension, setup

flags = [] if sys.platform == 'win32' else ['-O3', '-std=c11']  # no -ffast-math: +-inf, ties and NaN keep their meaning
setup(ext_modules=[Extension('fastsom._native', ['fastsom/_native.c'], extra_compile_args=flags, optional=True)])
