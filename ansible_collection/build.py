"""Stage and build the imds.ec2 collection: ``python ansible_collection/build.py``.

The collection ships the client in ``plugins/module_utils/`` so a managed host
needs nothing but CPython. Those files are not kept in this directory: the
build copies them, byte for byte, from ``ec2_metadata_core/`` (the one
source), following the package's relative imports from ``snapshot.py``, ``presence.py`` and the
package ``__init__.py``. Ansible's payload builder follows relative imports
inside module_utils, so no line is rewritten.

The version comes from pyproject.toml (the project's one version); the build
writes it into the staged ``galaxy.yml``, whose other fields come from the
repository root's ``galaxy.yml``.

The staged tree ends in ``ansible_collections/imds/ec2`` so ansible-test can
run in it; ``ansible-galaxy collection build`` turns it into
``dist/imds-ec2-<version>.tar.gz``.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORE = ROOT / "ec2_metadata_core"
# The modules the plugins import; everything they import is shipped too.
CORE_ENTRY_POINTS = ("__init__.py", "events.py", "identity.py", "presence.py", "snapshot.py")
NAMESPACE, NAME = "imds", "ec2"
# Never staged: this script, caches, ansible-test output.
SKIP_NAMES = frozenset(("__pycache__", ".pytest_cache"))
SKIP_PATHS = frozenset(("build.py", "tests/output"))


class BuildError(Exception):
    """The build cannot go on; the message says why."""


def project_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``[project] version`` from pyproject.toml."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the one line we need is simple
        match = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
        if match is None:
            raise BuildError("no [project] version in {}".format(pyproject)) from None
        return match.group(1)
    version = tomllib.loads(text).get("project", {}).get("version")
    if not isinstance(version, str):
        raise BuildError("no [project] version in {}".format(pyproject))
    return version


def relative_imports(source: Path) -> Set[str]:
    """Sibling module names a core file imports (``from .x import`` / ``from . import x``)."""
    tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
    names: Set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        if node.level != 1:
            raise BuildError("{}: import reaches outside the package".format(source.name))
        if node.module:
            names.add(node.module.split(".")[0])
        else:
            names.update(alias.name for alias in node.names)
    return names


def core_closure(core: Path = CORE) -> List[str]:
    """File names of the core modules to ship: the entry points and all they import."""
    wanted = list(CORE_ENTRY_POINTS)
    seen: Set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        path = core / name
        if not path.is_file():
            raise BuildError("core module {} is imported but missing".format(path))
        seen.add(name)
        for module in relative_imports(path):
            if (core / module).is_dir():
                raise BuildError("{} imports subpackage {}: not shippable".format(name, module))
            if (core / (module + ".py")).is_file():
                wanted.append(module + ".py")
            # otherwise a name defined in __init__ (``from . import ec2_metadata``)
    return sorted(seen)


def _copy_tree(src: Path, dst: Path) -> None:
    for entry in sorted(src.iterdir()):
        relative = entry.relative_to(HERE).as_posix()
        if entry.name in SKIP_NAMES or relative in SKIP_PATHS or entry.suffix == ".pyc":
            continue
        target = dst / entry.name
        if entry.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            _copy_tree(entry, target)
        else:
            shutil.copy2(entry, target)


def staged_galaxy_yml(template: str, version: str) -> str:
    """The root galaxy.yml with ``version`` added after ``name``."""
    if re.search(r"^version\s*:", template, re.M):
        raise BuildError("galaxy.yml must not set version: it comes from pyproject.toml")
    lines = template.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"name\s*:", line):
            lines.insert(index + 1, "version: {}".format(version))
            return "\n".join(lines) + "\n"
    raise BuildError("galaxy.yml has no top-level name")


def stage(destination: Path, version: Optional[str] = None) -> Path:
    """Fill ``destination`` (which must end in ansible_collections/imds/ec2) with the collection."""
    if destination.parts[-3:] != ("ansible_collections", NAMESPACE, NAME):
        raise BuildError("stage directory must end in ansible_collections/imds/ec2")
    version = version or project_version()
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    _copy_tree(HERE, destination)
    template = (ROOT / "galaxy.yml").read_text(encoding="utf-8")
    (destination / "galaxy.yml").write_text(staged_galaxy_yml(template, version), encoding="utf-8")
    module_utils = destination / "plugins" / "module_utils"
    module_utils.mkdir(parents=True, exist_ok=True)
    for name in core_closure():
        target = module_utils / name
        if target.exists():
            raise BuildError(
                "ansible_collection/plugins/module_utils/{} shadows the core module; "
                "the build copies it from ec2_metadata_core/".format(name)
            )
        shutil.copyfile(CORE / name, target)
    return destination


def _tool(name: str) -> str:
    """A console script of this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BuildError("{} not found; install ansible-core".format(name))
    return found


def build(stage_dir: Path, dist: Path) -> Path:
    """Stage the collection and build its tarball into ``dist``; returns the tarball."""
    version = project_version()
    stage(stage_dir, version)
    dist.mkdir(parents=True, exist_ok=True)
    tarball = dist / "{}-{}-{}.tar.gz".format(NAMESPACE, NAME, version)
    env: Dict[str, str] = dict(os.environ, ANSIBLE_NOCOLOR="1")
    subprocess.run(
        [_tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(dist)],
        cwd=str(stage_dir),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if not tarball.is_file():
        raise BuildError("ansible-galaxy did not write {}".format(tarball))
    return tarball


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage",
        type=Path,
        default=ROOT / "build" / "ansible_collections" / NAMESPACE / NAME,
        help="where to stage the collection tree (default: %(default)s)",
    )
    parser.add_argument(
        "--dist", type=Path, default=ROOT / "dist", help="where to write the tarball"
    )
    parser.add_argument(
        "--stage-only", action="store_true", help="stage the tree, do not build the tarball"
    )
    args = parser.parse_args(argv)
    try:
        if args.stage_only:
            print(stage(args.stage.resolve()))
        else:
            print(build(args.stage.resolve(), args.dist.resolve()))
    except (BuildError, OSError, subprocess.CalledProcessError) as exc:
        print("build.py: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
