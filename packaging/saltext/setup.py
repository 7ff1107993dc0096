"""The parts of saltext.imds-ec2's metadata that are the project's: version, pin, addresses.

From a checkout they are read from the project's pyproject.toml (two folders
up); from this distribution's sdist, which has no such file, from the sdist's
own PKG-INFO, so a wheel built from the sdist says the same.
"""

from __future__ import annotations

import email.parser
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from setuptools import setup

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent / "pyproject.toml"
LIBRARY = "ec2-metadata-core"


def from_pyproject() -> Tuple[str, Dict[str, str]]:
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(PROJECT.read_text(encoding="utf-8"))["project"]
    else:  # Salt 3006 runs Python 3.10: setuptools' own TOML reader
        from setuptools.config.pyprojecttoml import read_configuration

        project = read_configuration(PROJECT, expand=False)["project"]
    return project["version"], dict(project["urls"])


def from_pkg_info() -> Tuple[str, Dict[str, str]]:
    info = email.parser.Parser().parsestr((HERE / "PKG-INFO").read_text(encoding="utf-8"))
    urls: List[str] = info.get_all("Project-URL") or []
    return info["Version"], dict(url.split(", ", 1) for url in urls)


version, urls = from_pyproject() if PROJECT.is_file() else from_pkg_info()
setup(
    version=version,
    install_requires=["{}=={}".format(LIBRARY, version)],
    # The master engine that enrolls minions on their identity document verifies it.
    extras_require={"identity": ["{}[identity]=={}".format(LIBRARY, version)]},
    project_urls=urls,
)
