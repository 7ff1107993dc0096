"""The house rules docs/architecture.md states, checked on the code itself.

* No import cycle between the package's modules (function-level imports
  count: a cycle there is a cycle a reader has to hold in their head).
* No product module over ``MAX_LINES`` lines, but for the stated exceptions.
* The walk of a read, from the attribute to the socket, is the one the page
  describes: the package modules a read of ``region`` enters, in order, are
  recorded and compared with the page's list; a warm read (the value cached)
  passes through at most three.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest

from ec2_metadata_core import EC2Metadata
from ec2_metadata_core.simulator import Simulator, load_instance

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
# Python packages whose modules import one another: (directory, dotted name).
PACKAGES = (
    (ROOT / "ec2_metadata_core", "ec2_metadata_core"),
    (ROOT / "salt_grains", "saltext.imds_ec2"),
)
MAX_LINES = 600
# A module allowed past MAX_LINES, and why (the page says the same).
LONGER = {
    "ec2_metadata_core/aws_certificates.py": "data: AWS's public certificates, one per region",
    # DOCUMENTATION, EXAMPLES and RETURN, which ansible-doc reads from the module itself.
    "ansible_collection/plugins/modules/ec2_metadata_facts.py": "the module's documentation",
}
WARM_MODULES_AT_MOST = 3
DOCUMENT = load_instance()["dynamic"]["instance-identity"]["document"]["$json"]


def _modules(directory: Path, dotted: str) -> Dict[str, Path]:
    found = {}
    for path in sorted(directory.rglob("*.py")):
        parts = list(path.relative_to(directory).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([dotted, *parts])] = path
    return found


def _imports(name: str, path: Path, known: Dict[str, Path]) -> Iterator[str]:
    """The package modules ``name`` (at ``path``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import parse` imports a module; `from . import X` a name of __init__.
            targets = [
                base + "." + alias.name if base + "." + alias.name in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_sees_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("def f():\n    from .b import g\n")
    (tmp_path / "b.py").write_text("from . import a\n")
    (tmp_path / "c.py").write_text("from .a import f\n")
    known = _modules(tmp_path, "pkg")
    graph = {name: set(_imports(name, path, known)) for name, path in known.items()}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("directory,dotted", PACKAGES, ids=[p[1] for p in PACKAGES])
def test_no_import_cycle(directory: Path, dotted: str) -> None:
    known = _modules(directory, dotted)
    graph = {name: set(_imports(name, path, known)) for name, path in known.items()}
    assert _cycles(graph) == []


def _product_files() -> Iterator[Path]:
    for directory, _ in PACKAGES:
        yield from sorted(directory.rglob("*.py"))
    yield from sorted((ROOT / "ansible_collection" / "plugins").rglob("*.py"))
    yield from sorted((ROOT / "ansible_collection" / "extensions").rglob("*.py"))


def test_no_product_module_over_the_limit() -> None:
    long = {}
    for path in _product_files():
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and relative not in LONGER:
            long[relative] = lines
    assert long == {}


def test_the_exceptions_are_long_and_stated() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for relative in LONGER:
        lines = len((ROOT / relative).read_text(encoding="utf-8").splitlines())
        assert lines > MAX_LINES, "{} is no longer an exception: drop it".format(relative)
        assert relative in page


def _record(read: Any) -> List[str]:
    """The package modules whose code runs during ``read()``, in the order first entered."""
    package = str(ROOT / "ec2_metadata_core") + "/"
    entered: List[str] = []
    seen: Set[str] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            filename = frame.f_code.co_filename
            if filename.startswith(package) and filename not in seen:
                seen.add(filename)
                entered.append(Path(filename).relative_to(ROOT).as_posix())

    sys.setprofile(profile)
    try:
        read()
    finally:
        sys.setprofile(None)
    return entered


_WALK = re.compile(r"<!-- walk: (?P<name>[a-z ]+) -->\n(?P<body>.*?)<!-- /walk -->", re.S)
_FILE = re.compile(r"`(ec2_metadata_core/[\w/]+\.py)`")


def _documented(name: str) -> List[str]:
    """The files the page's walk ``name`` names, in order, each once."""
    walks = {m.group("name"): m.group("body") for m in _WALK.finditer(PAGE.read_text("utf-8"))}
    assert name in walks, "docs/architecture.md has no walk: {}".format(name)
    files: List[str] = []
    for found in _FILE.findall(walks[name]):
        if found not in files:
            files.append(found)
    return files


def _warmed(sim: Simulator) -> EC2Metadata:
    """A client past its first read: token held, the route measured, nothing else cached."""
    metadata = EC2Metadata(endpoint=sim.url)
    assert metadata.instance_id
    return metadata


def test_read_walk_matches_the_page(imds_simulator: Simulator) -> None:
    metadata = _warmed(imds_simulator)
    region: List[Optional[str]] = []
    walk = _record(lambda: region.append(metadata.region))
    assert region == [DOCUMENT["region"]]
    assert "ec2_metadata_core/wire.py" in walk  # the socket is reached
    assert walk == _documented("read")


def test_warm_read_stays_in_a_few_modules(imds_simulator: Simulator) -> None:
    metadata = _warmed(imds_simulator)
    first = metadata.region
    walk = _record(lambda: metadata.region)
    assert metadata.region == first
    assert len(walk) <= WARM_MODULES_AT_MOST, walk
    assert walk == _documented("warm read")


def test_recorder_sees_a_read_that_goes_to_the_socket(imds_simulator: Simulator) -> None:
    """The check above could pass by recording nothing: a cleared cache must record the wire."""
    metadata = _warmed(imds_simulator)
    metadata.clear_all()
    walk = _record(lambda: metadata.region)
    assert "ec2_metadata_core/wire.py" in walk


def test_a_dump_loads_no_simulator_and_no_openssl(imds_simulator: Simulator) -> None:
    """A command builds the options of the commands named on its line only: a dump loads no
    simulator module (its option tree took about 7 ms a process; its control path loads
    ``secrets``, so OpenSSL, some 3 MB)."""
    command = ["-m", "ec2_metadata_core", "--endpoint", imds_simulator.url, "dump"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-500:]
    loaded = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "ec2_metadata_core.snapshot" in loaded  # the record is of this dump
    simulator = {name for name in loaded if name.startswith("ec2_metadata_core.simulator")}
    assert simulator | (loaded & {"_hashlib", "secrets"}) == set()
