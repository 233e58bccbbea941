"""Build the compiled engine, dropsvc._engine, against the system SQLite; a wheel also carries the page
and the nginx site template."""

import shlex
import shutil
import subprocess
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.errors import FileError

STATIC = Path(__file__).resolve().parent / "static"  # the page, at the top level (docker-compose mounts it)
VENDORED = ("vendor/alpine.min.js",)  # from npm, never committed: `make static-assets`
NGINX_TEMPLATE = Path(__file__).resolve().parent / "deploy" / "nginx.conf.template"  # dropsvc.run.deploy renders it


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


class BuildPyWithPage(build_py):
    """build_py, plus the page (static/ with vendor/) as dropsvc/static/ in the build: the wheel serves it;
    and deploy/nginx.conf.template beside dropsvc/run/deploy.py, which renders it.

    Only into the build directory, never into the checkout's dropsvc/; an editable install
    (``pip install -e``) copies nothing and finds static/ in the checkout instead.
    """

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        missing = [name for name in VENDORED if not (STATIC / name).is_file()]
        if missing:
            raise FileError(f"the wheel must carry the shopper page, but static/{missing[0]} is missing: "
                            "run `make static-assets` (Alpine.js from npm into static/vendor/) first")
        target = Path(self.build_lib) / "dropsvc" / "static"
        shutil.rmtree(target, ignore_errors=True)  # a stale build/ keeps no asset the checkout dropped
        shutil.copytree(STATIC, target, ignore=shutil.ignore_patterns(".*"))
        shutil.copy2(NGINX_TEMPLATE, Path(self.build_lib) / "dropsvc" / "run" / NGINX_TEMPLATE.name)


include_dirs, library_dirs, libraries = sqlite_flags()

engine = Extension(
    "dropsvc._engine",
    sources=["_engine/engine.pyx", "_engine/wal_vfs.c", "_engine/fault_vfs.c"],
    include_dirs=["_engine", *include_dirs],
    library_dirs=library_dirs,
    libraries=[*libraries, "pthread"],
    extra_compile_args=["-O2"],
)

setup(
    cmdclass={"build_py": BuildPyWithPage},
    ext_modules=cythonize(
        [engine],
        include_path=["_engine"],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
