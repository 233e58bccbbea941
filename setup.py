"""Build the compiled engine, dropsvc._engine, against the system SQLite."""

import shlex
import subprocess

from Cython.Build import cythonize
from setuptools import Extension, setup


def sqlite_flags() -> tuple[list[str], list[str], list[str]]:
    """Include dirs, library dirs and libraries for SQLite: pkg-config, else -lsqlite3."""
    try:
        cflags = subprocess.run(["pkg-config", "--cflags", "sqlite3"], check=True,
                                capture_output=True, text=True).stdout
        libs = subprocess.run(["pkg-config", "--libs", "sqlite3"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [], [], ["sqlite3"]
    include_dirs = [f[2:] for f in shlex.split(cflags) if f.startswith("-I")]
    library_dirs = [f[2:] for f in shlex.split(libs) if f.startswith("-L")]
    libraries = [f[2:] for f in shlex.split(libs) if f.startswith("-l")] or ["sqlite3"]
    return include_dirs, library_dirs, libraries


include_dirs, library_dirs, libraries = sqlite_flags()

engine = Extension(
    "dropsvc._engine",
    sources=["_engine/engine.pyx", "_engine/wal_vfs.c"],
    include_dirs=["_engine", *include_dirs],
    library_dirs=library_dirs,
    libraries=[*libraries, "pthread"],
    extra_compile_args=["-O2"],
)

setup(
    ext_modules=cythonize(
        [engine],
        include_path=["_engine"],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
