"""What is run for each row: the command, its environment, and the check of its answer.

A run whose answer is wrong (not the simulator's region, a failed module)
is an error, never a figure: a contender that fails fast must not look fast.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import layout
import measure

from saltext.imds_ec2.local import write_local_minion

REGION = "eu-central-1"  # the simulator's default instance


class Contender(NamedTuple):
    key: str
    label: str
    argv: List[str]
    env: Dict[str, str]
    check: Callable[[measure.Proc], Optional[str]]  # None if the answer is right


def json_tail(text: str) -> Any:
    """The last JSON document of ``text`` (tools may print warnings before it)."""
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except ValueError:
            start = text.find("{", start + 1)
    return None


def _failed(proc: measure.Proc) -> Optional[str]:
    if proc.returncode != 0:
        return "exit {}: {}".format(proc.returncode, (proc.stderr or proc.stdout).strip()[-300:])
    return None


def _check_dump(proc: measure.Proc) -> Optional[str]:
    data = json_tail(proc.stdout)
    if not isinstance(data, dict) or data.get("region") != REGION:
        return _failed(proc) or "no region in the dump"
    return None


def _check_peer_library(proc: measure.Proc) -> Optional[str]:
    data = json_tail(proc.stdout)
    if not isinstance(data, dict) or data.get("region") != REGION:
        return _failed(proc) or "ec2-metadata did not read the region"
    return None


def _check_peer_module(proc: measure.Proc) -> Optional[str]:
    data = json_tail(proc.stdout)
    facts = data.get("ansible_facts") if isinstance(data, dict) else None
    if not isinstance(facts, dict) or facts.get("ansible_ec2_placement_region") != REGION:
        return _failed(proc) or "amazon.aws gave no region fact"
    return None


def process_contenders(url: str) -> List[Contender]:
    """The whole-process comparison: ours, ec2-metadata 3.0.0, amazon.aws."""
    env = measure.child_env()
    return [
        Contender(
            "ours",
            "ours: python -m ec2_metadata_core dump",
            [str(layout.PYTHON), "-m", "ec2_metadata_core", "dump", "--endpoint", url],
            env,
            _check_dump,
        ),
        Contender(
            "ec2_metadata",
            "ec2-metadata 3.0.0, every attribute",
            [str(layout.PEERS_PYTHON), str(layout.HARNESS / "peer_ec2_metadata.py"), url],
            env,
            _check_peer_library,
        ),
        Contender(
            "amazon_aws",
            "amazon.aws ec2_metadata_facts module",
            [
                str(layout.PYTHON),
                str(layout.HARNESS / "peer_amazon_aws.py"),
                str(layout.AMAZON_MODULE),
                url,
            ],
            env,
            _check_peer_module,
        ),
    ]


# -- Ansible end to end ------------------------------------------------------------


def _ansible_env(collections: Path, scratch: Path) -> Dict[str, str]:
    home = scratch / "ansible-home"
    home.mkdir(parents=True, exist_ok=True)
    config = scratch / "ansible.cfg"
    config.write_text("[defaults]\n", encoding="utf-8")
    return measure.child_env(
        {
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_PYTHON_INTERPRETER": str(layout.PYTHON),
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )


def _ansible(module: str, args: Optional[str]) -> List[str]:
    argv = [str(layout.BIN / "ansible"), "localhost", "-m", module]
    return argv + (["-a", args] if args else [])


def _check_ansible(expect: str) -> Callable[[measure.Proc], Optional[str]]:
    def check(proc: measure.Proc) -> Optional[str]:
        if "SUCCESS" not in proc.stdout or expect not in proc.stdout:
            return _failed(proc) or "ansible did not succeed: " + proc.stdout.strip()[-300:]
        return None

    return check


def patched_amazon_aws(url: str, scratch: Path) -> Path:
    """A copy of amazon.aws whose module has its IMDS base URL replaced by ``url``.

    ``ansible localhost -m`` cannot point the module anywhere (it has no
    endpoint option), so this copy holds the collection's metadata and the one
    module, with the string http://169.254.169.254 replaced: nothing else of
    the file changes. Returns the directory for ANSIBLE_COLLECTIONS_PATH.
    """
    root = scratch / "amazon-patched"
    target = root / "ansible_collections" / "amazon" / "aws"
    if root.exists():
        shutil.rmtree(root)
    (target / "meta").mkdir(parents=True)
    (target / "plugins" / "modules").mkdir(parents=True)
    shutil.copy2(layout.AMAZON_AWS / "MANIFEST.json", target / "MANIFEST.json")
    shutil.copy2(layout.AMAZON_AWS / "meta" / "runtime.yml", target / "meta" / "runtime.yml")
    source = layout.AMAZON_MODULE.read_text(encoding="utf-8")
    patched = source.replace("http://169.254.169.254", url.rstrip("/"))
    if "169.254.169.254" in patched:
        raise RuntimeError("the amazon.aws module still names the real IMDS address")
    (target / "plugins" / "modules" / "ec2_metadata_facts.py").write_text(patched, encoding="utf-8")
    return root


def ansible_contenders(url: str, scratch: Path, ours_ready: bool) -> List[Contender]:
    region = '"{}"'.format(REGION)
    rows = [
        Contender(
            "ansible_ping",
            "ansible localhost -m ansible.builtin.ping",
            _ansible("ansible.builtin.ping", None),
            _ansible_env(layout.OURS_COLLECTIONS, scratch),
            _check_ansible("pong"),
        )
    ]
    if ours_ready:
        rows.append(
            Contender(
                "ansible_ours",
                "ansible localhost -m imds.ec2.ec2_metadata_facts",
                _ansible("imds.ec2.ec2_metadata_facts", "endpoint=" + url),
                _ansible_env(layout.OURS_COLLECTIONS, scratch),
                _check_ansible('"region": ' + region),
            )
        )
    rows.append(
        Contender(
            "ansible_amazon_aws",
            "ansible localhost -m amazon.aws.ec2_metadata_facts",
            _ansible("amazon.aws.ec2_metadata_facts", None),
            _ansible_env(patched_amazon_aws(url, scratch), scratch),
            _check_ansible('"ansible_ec2_placement_region": ' + region),
        )
    )
    return rows


# -- Salt end to end ----------------------------------------------------------------


class Minion(NamedTuple):
    root: Path
    confdir: Path
    negative_cache: Optional[Path]  # the grains' "not on EC2" memo, removed for fresh runs


def minion(scratch: Path, name: str, ec2_metadata: Dict[str, Any]) -> Minion:
    """A ``salt-call --local`` setup under scratch/salt/NAME: nothing outside it is touched."""
    root = scratch / "salt" / name
    if root.exists():
        shutil.rmtree(root)
    confdir = write_local_minion(root, "bench-minion", ec2_metadata)
    negative: Optional[Path] = None
    try:
        from saltext.imds_ec2 import presence_cache as memo

        where = memo.path_in(str(root / "cache"))
        negative = Path(where) if where else None
    except ImportError:
        negative = None
    return Minion(root, confdir, negative)


def salt_call(target: Minion, expect: str) -> Contender:
    argv = [
        str(layout.BIN / "salt-call"),
        "--local",
        "-c",
        str(target.confdir),
        "--out=json",
        "--log-level=quiet",
        "grains.get",
        "ec2:region",
    ]

    def check(proc: measure.Proc) -> Optional[str]:
        data = json_tail(proc.stdout)
        if not isinstance(data, dict) or data.get("local") != expect:
            got = data.get("local") if isinstance(data, dict) else None
            return _failed(proc) or "salt-call gave {!r}, expected {!r}".format(got, expect)
        return None

    return Contender("salt", "salt-call", argv, measure.child_env(), check)
