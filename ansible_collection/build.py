"""Stage and build the imds.ec2 collection: ``python ansible_collection/build.py``.

The collection ships the client in ``plugins/module_utils/`` so a managed host
needs nothing but CPython. Those files are not kept in this directory: the
build copies them, byte for byte, from ``ec2_metadata_core/`` (the one
source), following the package's relative imports from ``snapshot.py``, ``presence.py`` and the
package ``__init__.py``. Ansible's payload builder follows relative imports
inside module_utils, so no line is rewritten.

The version and the addresses (``repository``, ``documentation``, ``issues``,
``homepage``) come from pyproject.toml, the project's one place for them; the
build writes them into the staged ``galaxy.yml``, whose other fields come from
the repository root's ``galaxy.yml``. The build also ships the project's
changelog (``changelogs/changelog.yaml``, kept with antsibull-changelog, and
``CHANGELOG.md``) and, beside the plugins' GPL-3.0-or-later text in
``LICENSES/``, the MIT licence of the client it copies in.

The staged tree ends in ``ansible_collections/imds/ec2`` so ansible-test can
run in it; ``ansible-galaxy collection build`` turns it into
``dist/imds-ec2-<version>.tar.gz``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

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


# galaxy.yml field <- pyproject.toml [project.urls] key.
GALAXY_URLS = (
    ("repository", "Repository"),
    ("documentation", "Documentation"),
    ("homepage", "Homepage"),
    ("issues", "Issues"),
)
# Shipped from the repository root: where in the collection <- where in the repository.
FROM_ROOT = (
    ("changelogs/changelog.yaml", "changelogs/changelog.yaml"),
    ("changelogs/config.yaml", "changelogs/config.yaml"),
    ("CHANGELOG.md", "CHANGELOG.md"),
    ("LICENSES/MIT.txt", "LICENSE"),
)


def _project_table(pyproject: Path) -> Dict[str, Any]:
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the lines we need are simple
        return _project_lines(text)
    table = tomllib.loads(text).get("project", {})
    return table if isinstance(table, dict) else {}


def _project_lines(text: str) -> Dict[str, Any]:
    """``version`` and ``urls`` of pyproject.toml's text, read without a TOML parser."""
    table: Dict[str, Any] = {"urls": {}}
    section = ""
    for line in text.splitlines():
        header = re.match(r"\[([\w.]+)\]\s*$", line)
        if header:
            section = header.group(1)
            continue
        pair = re.match(r'([\w"-]+)\s*=\s*"([^"]*)"\s*$', line)
        if pair and section == "project" and pair.group(1) == "version":
            table["version"] = pair.group(2)
        elif pair and section == "project.urls":
            table["urls"][pair.group(1).strip('"')] = pair.group(2)
    return table


def project_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``[project] version`` from pyproject.toml."""
    version = _project_table(pyproject).get("version")
    if not isinstance(version, str):
        raise BuildError("no [project] version in {}".format(pyproject))
    return version


def project_urls(pyproject: Path = ROOT / "pyproject.toml") -> Dict[str, str]:
    """galaxy.yml's address fields, from pyproject.toml's ``[project.urls]``."""
    urls = _project_table(pyproject).get("urls") or {}
    missing = [key for _, key in GALAXY_URLS if not isinstance(urls.get(key), str)]
    if missing:
        raise BuildError("no {} in [project.urls] of {}".format(missing[0], pyproject))
    return {field: urls[key] for field, key in GALAXY_URLS}


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


def staged_galaxy_yml(template: str, version: str, urls: Optional[Mapping[str, str]] = None) -> str:
    """The root galaxy.yml with ``version`` added after ``name``, the addresses at the end."""
    urls = project_urls() if urls is None else urls
    for field in ["version", *urls]:
        if re.search(r"^{}\s*:".format(field), template, re.M):
            raise BuildError(
                "galaxy.yml must not set {}: it comes from pyproject.toml".format(field)
            )
    lines = template.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"name\s*:", line):
            lines.insert(index + 1, "version: {}".format(version))
            lines.extend("{}: {}".format(field, json.dumps(url)) for field, url in urls.items())
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
    for shipped, source in FROM_ROOT:
        if not (ROOT / source).is_file():
            raise BuildError("{} is missing: the collection ships it".format(ROOT / source))
        (destination / shipped).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / source, destination / shipped)
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
