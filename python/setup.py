"""Build hook: compile libsembed from the repository (CMake, the parent folder of this one) and
ship it inside the package as sembed/libsembed.so. Everything else is in pyproject.toml.

Environment:
  SEMBED_SOURCE_DIR   the sembed repository (default: this file's parent folder)
  SEMBED_BUILD_DIR    CMake build folder (default: <source>/build-python, reused between installs)
  SEMBED_PREBUILT     use this already built libsembed.so instead of running CMake
  CMAKE_BUILD_PARALLEL_LEVEL  jobs for the build (default 2)
"""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def build_library():
    pre = os.environ.get("SEMBED_PREBUILT")
    if pre:
        if not os.path.isfile(pre):
            sys.exit(f"sembed setup: SEMBED_PREBUILT={pre} is not a file")
        return pre
    src = os.path.abspath(os.environ.get("SEMBED_SOURCE_DIR", os.path.join(HERE, "..")))
    if not os.path.isfile(os.path.join(src, "CMakeLists.txt")):
        sys.exit(f"sembed setup: no CMakeLists.txt in {src}: install from the sembed repository "
                 "(pip install ./python), or set SEMBED_SOURCE_DIR or SEMBED_PREBUILT")
    bld = os.path.abspath(os.environ.get("SEMBED_BUILD_DIR", os.path.join(src, "build-python")))
    if not shutil.which("cmake"):
        sys.exit("sembed setup: cmake not found (apt-get install cmake, or run tools/install-deps.sh)")
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    subprocess.check_call(["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=Release", "-DSEMBED_BUILD_TESTS=OFF"])
    subprocess.check_call(["cmake", "--build", bld, "--target", "sembed", "-j", jobs])
    lib = os.path.join(bld, "libsembed.so")
    if not os.path.isfile(lib):
        sys.exit(f"sembed setup: the build did not produce {lib}")
    return lib


class BuildPyWithLib(build_py):
    def run(self):
        super().run()
        lib = os.path.realpath(build_library())
        dst = os.path.join(self.build_lib, "sembed", "libsembed.so")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(lib, dst)  # the real file, not the symlink chain
        print(f"sembed setup: bundled {lib} as {dst}")


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: it carries a shared library
        return True


setup(cmdclass={"build_py": BuildPyWithLib}, distclass=BinaryDistribution)
