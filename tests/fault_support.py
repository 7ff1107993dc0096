"""The faces as a user meets them, for the fault matrix and the secrets tests.

Each runner reads the whole instance through one face and returns what the
user gets: the metadata, or the one line that says why not. Each also checks
its face's contract on the way (the CLI: exit status 1, nothing on stdout, one
line on stderr, no traceback; the Ansible module: a failed result with a one
line ``msg`` and no facts; the grains: no grain and at most one warning).

The Ansible module runs in this process from a collection staged by
``ansible_collection/build.py`` (what ``make collection`` ships), as the
collection's own unit tests run it; ``tests/ansible`` runs it through
``ansible-playbook``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, NamedTuple, Optional

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "ansible_collection" / "build.py"
FACES = ("library", "cli", "ansible", "grains")
# What the simulator's default instance holds that only a request for it may show.
CREDENTIALS = ("ASIASIMULATORKEY0001", "simulator-secret", "simulator-session-token")
USER_DATA_SECRET = "simulator-user-data-secret"


class Outcome(NamedTuple):
    """What a face gave: the metadata, or the one line saying why not (neither: no grain)."""

    value: Optional[Dict[str, Any]]
    error: Optional[str]


# Options every face takes under the same name (the CLI as flags).
CLIENT_OPTIONS = ("timeout", "attempts", "allow_imdsv1")


def free_port() -> int:
    """A loopback port nothing listens on (a refused connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A name whose lookup fails. No resolver is asked: ``no_dns`` and ``no_dns_env``
# make getaddrinfo fail for it at once, as a resolver answering NXDOMAIN would
# (a real lookup would send a packet off this machine).
UNRESOLVABLE = "imds.unresolvable.invalid"
_NO_DNS = """\
import socket

_real_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if host == {name!r}:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)
""".format(name=UNRESOLVABLE)


@contextlib.contextmanager
def no_dns(monkeypatch: Any) -> Iterator[None]:
    """In this process: ``UNRESOLVABLE`` does not resolve."""
    namespace: Dict[str, Any] = {}
    exec(_NO_DNS, namespace)
    with monkeypatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", namespace["getaddrinfo"])
        yield


def no_dns_env(directory: Path) -> Dict[str, str]:
    """Environment for a child process in which ``UNRESOLVABLE`` does not resolve."""
    site = directory / "no-dns-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        _NO_DNS + "socket.getaddrinfo = getaddrinfo\n", encoding="utf-8"
    )
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(site) + (os.pathsep + path if path else "")}


# -- the CLI ---------------------------------------------------------------------


def cli_args(options: Dict[str, Any]) -> List[str]:
    """Command-line flags for client options (timeout, attempts, allow_imdsv1, include_*)."""
    args: List[str] = []
    if "timeout" in options:
        args += ["--timeout", str(options["timeout"])]
    if "attempts" in options:
        args += ["--attempts", str(options["attempts"])]
    if options.get("allow_imdsv1"):
        args.append("--allow-imdsv1")
    return args


def run_cli(
    *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m ec2_metadata_core ARGS`` in a child process, as a user runs it."""
    environ = dict(os.environ)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ec2_metadata_core", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def cli_error(proc: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The CLI's one error line, after checking the exit status and that nothing else came."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[:500], proc.stderr)
    assert proc.stdout == "", proc.stdout[:500]
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ec2-metadata-core: "), lines[0]
    return lines[0]


def cli_dump(url: str, options: Dict[str, Any], env: Optional[Dict[str, str]] = None) -> Outcome:
    args = ["dump", "--endpoint", url, *cli_args(options)]
    if options.get("include_user_data"):
        args.append("--include-user-data")
    proc = run_cli(*args, env=env)
    if proc.returncode == 0:
        assert proc.stderr == "", proc.stderr
        return Outcome(json.loads(proc.stdout), None)
    return Outcome(None, cli_error(proc))


# -- the Ansible module, in this process --------------------------------------------

_staged: Dict[str, ModuleType] = {}


def ansible_facts_module(root: Path) -> ModuleType:
    """``imds.ec2.ec2_metadata_facts`` imported from a collection staged under ``root``.

    Staged once per test session: the module and its module_utils are the
    copies of the core the build ships, so they are what a managed host runs.
    """
    module = _staged.get("module")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location("imds_collection_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.stage(root / "ansible_collections" / "imds" / "ec2")
    # ansible_collections is a namespace package: it follows sys.path.
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    module = importlib.import_module(
        "ansible_collections.imds.ec2.plugins.modules.ec2_metadata_facts"
    )
    _staged["module"] = module
    return module


def run_ansible_module(module: ModuleType, **args: Any) -> Dict[str, Any]:
    """The module's result, as Ansible reads it from the module's stdout."""
    from ansible.module_utils.testing import patch_module_args  # type: ignore[import-untyped]

    out = io.StringIO()
    # exit_json and fail_json print the result, then exit.
    with patch_module_args(args), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        module.main()
    result: Dict[str, Any] = json.loads(out.getvalue())
    return result


def ansible_gather(module: ModuleType, url: str, options: Dict[str, Any]) -> Outcome:
    args: Dict[str, Any] = {k: options[k] for k in CLIENT_OPTIONS if k in options}
    if options.get("include_user_data"):
        args["include_user_data"] = True
    result = run_ansible_module(module, endpoint=url, **args)
    if not result.get("failed"):
        assert result["changed"] is False
        return Outcome(result["ansible_facts"]["ansible_ec2"], None)
    message = result["msg"]
    assert "ansible_facts" not in result
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("cannot read EC2 instance metadata: "), message
    return Outcome(None, message)


# -- the Salt grains, in this process --------------------------------------------------


def grains_opts(url: str, cachedir: Path, options: Dict[str, Any]) -> Dict[str, Any]:
    section: Dict[str, Any] = {"endpoint": url, "negative_cache_seconds": 0}
    section.update({k: options[k] for k in CLIENT_OPTIONS if k in options})
    if options.get("include_user_data"):
        section["include_user_data"] = True
    return {"cachedir": str(cachedir), "ec2_metadata": section}


def grains_gather(opts: Dict[str, Any], records: List[logging.LogRecord]) -> Outcome:
    """One grains refresh; ``records`` is where the test's log capture collects."""
    from saltext.imds_ec2 import ec2 as grains_impl

    grains_impl.forget_clients()  # a new minion process
    seen = len(records)
    try:
        got = grains_impl.grains(opts)
    finally:
        grains_impl.forget_clients()
    loud = [r for r in records[seen:] if r.levelno >= logging.WARNING]
    if got:
        assert not loud, [r.getMessage() for r in loud]
        return Outcome(got["ec2"], None)
    if not loud:
        return Outcome(None, None)  # "not on EC2": no grain, quietly
    assert len(loud) == 1, [r.getMessage() for r in loud]
    assert loud[0].exc_info is None
    message = loud[0].getMessage()
    assert "\n" not in message and message.startswith("ec2 grain omitted"), message
    return Outcome(None, message)
