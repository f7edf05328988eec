"""Builds dln's compiled extension with the repository's CMake (the same library as the `dln`
command) and packages it with the Python modules. Works offline:

    pip install --no-build-isolation ./python

The extension is built by CMake into python/dln/ (target dln_python of the release preset);
`make test` or `make run` builds it too, in which case this only checks that it is current.
"""

import glob
import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BuildWithCMake(build_py):
    def run(self):
        build = os.path.join(ROOT, "build", "release")
        if os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")):
            if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
                subprocess.check_call(["cmake", "--preset", "release"], cwd=ROOT)
            jobs = str(os.cpu_count() or 2)
            subprocess.check_call(["cmake", "--build", build, "--target", "dln_python", "-j", jobs],
                                  cwd=ROOT)
        if not glob.glob(os.path.join(HERE, "dln", "_core*.so")):
            raise SystemExit("dln: the extension python/dln/_core*.so was not built "
                             "(pybind11-dev and python3-dev are needed; see scripts/setup.sh)")
        super().run()


class BinaryDistribution(Distribution):
    """The wheel holds a compiled extension: tag it for this platform and Python."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithCMake}, distclass=BinaryDistribution)
