"""The compiled part of fastsom: one optional C extension, `fastsom._native` (the CPU search's row minimum,
the per-unit sums of a batch and the split of rows with missing cells).

Everything else is in pyproject.toml. It is built with OpenMP where the compiler has it (gcc; Apple's clang
has not), so that a call shares its work among torch's threads; else without, on one thread. Where no C
compiler works, the build goes on without it and fastsom uses torch's own steps, which give the same units
(`fastsom.native`)."""
import sys
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

class build_with_openmp(build_ext):
    "Build with `-fopenmp`, and again without it where the compiler or linker refuses it."
    def build_extension(self, ext):
        if sys.platform == 'win32': return super().build_extension(ext)
        flags, link = list(ext.extra_compile_args), list(ext.extra_link_args)
        ext.extra_compile_args, ext.extra_link_args = flags + ['-fopenmp'], link + ['-fopenmp']
        try: return super().build_extension(ext)
        except (CompileError, LinkError):
            print('fastsom: the compiler has no OpenMP; building the extension to run on one thread')
            ext.extra_compile_args, ext.extra_link_args = flags, link
            return super().build_extension(ext)

flags = [] if sys.platform == 'win32' else ['-O3', '-std=c11']  # no -ffast-math: +-inf, ties and NaN keep their meaning
setup(ext_modules=[Extension('fastsom._native', ['fastsom/_native.c'], extra_compile_args=flags, optional=True)],
      cmdclass={'build_ext': build_with_openmp})
