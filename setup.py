# SPDX-License-Identifier: MIT
"""Builds attn's extension with CMake (the project's own build) and packages python/attn around it.
Used through pyproject.toml: pip install --no-build-isolation ."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(self.build_temp).resolve() / "cmake"
        config = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                  "-DATTN_BUILD_TESTS=OFF", "-DATTN_BUILD_BENCH=OFF", "-DATTN_BUILD_TOOLS=OFF",
                  "-DATTN_BUILD_PYTHON=ON", f"-DPython_EXECUTABLE={sys.executable}"]
        subprocess.run(config, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build), "--target", "attn_python", "-j", jobs], check=True)
        built = next((build / "python" / "attn").glob("_attn*.so"), None)
        if built is None:
            sys.exit("attn setup: the CMake build did not produce python/attn/_attn*.so (is pybind11-dev installed?)")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)


version = re.search(r"project\(attn VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)
setup(
    version=version,
    packages=["attn"],
    package_dir={"attn": "python/attn"},
    ext_modules=[CMakeExtension("attn._attn")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
