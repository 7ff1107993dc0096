"""docs/migrate-salt-metadata-grain.md, run: Salt 3006's ``metadata`` grain on this Salt.

Real ``salt-call --local`` against the simulator, with the page's minion
config, targets and state as printed (paths under /etc moved into tmp_path),
and its table of 3006 keys checked value for value against the ``ec2`` grain.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from readme_support import Block, readme_blocks
from salt_grains_support import SECRETS, Minion, loud_lines, salt_call

from ec2_metadata_core.bounds import MAX_TREE_DEPTH
from ec2_metadata_core.simulator import Simulator

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrate-salt-metadata-grain.md"
# The table's placeholders, on the simulated instance.
PLACES = {"<key>": "Role", "<name>": "simulator-key"}


def blocks() -> List[Block]:
    return readme_blocks(PAGE)


def block(language: str, first: str) -> str:
    (text,) = [b.text for b in blocks() if b.language == language and first in b.text]
    return text


def table() -> List[List[str]]:
    rows = []
    for line in PAGE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 2:
            rows.append(cells)
    return rows


def opted_in(minion: Minion) -> Minion:
    config = block("yaml", "metadata_server_grains")
    (minion.confdir / "minion.d").mkdir()
    (minion.confdir / "minion.d" / "metadata.conf").write_text(config)
    return minion


@pytest.fixture
def on_ec2(imds_simulator: Simulator, minion: Callable[..., Minion]) -> Minion:
    return opted_in(minion({"endpoint": imds_simulator.url}))


@pytest.fixture
def items(on_ec2: Minion) -> Dict[str, Any]:
    value: Dict[str, Any] = salt_call(on_ec2, "grains.items").value
    return value


def at(grains: Dict[str, Any], template: str) -> Any:
    """The value at a ``a:b:<mac>:c`` path, placeholders filled in, MACs kept whole."""
    places = dict(PLACES, **{"<mac>": grains["ec2"]["mac"]})
    value: Any = grains
    for part in template.split(":"):
        value = value[places.get(part, part)]
    return value


def test_every_block_is_run() -> None:
    kinds = [(b.language, b.text.split()[0]) for b in blocks()]
    assert kinds == [("sh", "salt-pip"), ("yaml", "#"), ("sh", "salt"), ("jinja", "{#")]


def test_the_install_line_names_the_saltext_distribution() -> None:
    # tests/test_packaging.py installs it as salt-pip does (pip --target).
    assert block("sh", "salt-pip").split() == ["salt-pip", "install", "saltext.imds-ec2"]


@pytest.mark.slow
def test_targets_written_for_3006_match(on_ec2: Minion) -> None:
    lines = block("sh", "salt -G").splitlines()
    targets = [shlex.split(line) for line in lines if line.startswith("salt -G")]
    assert len(targets) == 2
    for _, _, target, _ in targets:
        assert salt_call(on_ec2, "match.grain", target).value is True, target
        assert salt_call(on_ec2, "match.grain", target.replace("eu-", "us-")).value is (
            "eu-" not in target
        )
    (get,) = [shlex.split(line) for line in lines if line.startswith("salt-call")]
    macs = salt_call(on_ec2, *get[1:]).value
    assert list(macs) == ["02:1a:2b:3c:4d:5e", "02:1a:2b:3c:4d:5f"]
    assert macs["02:1a:2b:3c:4d:5e"]["subnet-id"] == "subnet-0a1b2c3d4e5f60001"
    assert loud_lines(on_ec2.log) == []


@pytest.mark.slow
def test_the_state_written_for_3006_applies(on_ec2: Minion, tmp_path: Path) -> None:
    state = block("jinja", "zone.sls").replace("/etc/", str(tmp_path) + "/")
    srv = on_ec2.root / "srv"
    srv.mkdir(parents=True, exist_ok=True)
    (srv / "zone.sls").write_text(state)
    result = salt_call(on_ec2, "state.apply", "zone").value
    assert all(step["result"] for step in result.values()), result
    assert (tmp_path / "instance-zone").read_text().strip() == "eu-central-1b"
    assert (tmp_path / "instance-account").read_text().strip() == "123456789012"


@pytest.mark.slow
def test_the_table_maps_each_3006_key_to_the_same_value_in_the_ec2_grain(
    items: Dict[str, Any],
) -> None:
    rows = table()
    assert len(rows) >= 20
    for old, new in rows:
        old_path, new_path = old.split("`")[1], new.split("`")[1]
        assert new_path.startswith("ec2:"), new
        theirs, ours = at(items, old_path), at(items, new_path)
        if "JSON text" in old:
            assert json.loads(theirs) == ours, old
        elif "one a line" in old:
            assert theirs.split("\n") == ours, old
        else:
            assert theirs == ours, old


@pytest.mark.slow
def test_3006_keys_as_imds_names_them(items: Dict[str, Any]) -> None:
    meta = items["meta-data"]
    assert meta["placement"]["availability-zone"] == "eu-central-1b"
    assert meta["ami-launch-index"] == "0"  # text, as 3006 had it
    assert meta["public-keys"]["simulator-key"]["openssh-key"].startswith("ssh-ed25519 ")
    assert meta["tags"]["instance"]["aws:autoscaling:groupName"] == "web-asg"
    assert meta["network"]["interfaces"]["macs"]["02:1a:2b:3c:4d:5e"]["local-ipv4s"] == (
        "10.0.1.23\n10.0.1.24"
    )
    document = json.loads(items["dynamic"]["instance-identity"]["document"])
    assert document["region"] == "eu-central-1"
    assert set(items["dynamic"]["instance-identity"]) >= {"document", "pkcs7", "signature"}


@pytest.mark.slow
def test_no_secret_becomes_a_grain(items: Dict[str, Any]) -> None:
    text = json.dumps(items)
    assert [secret for secret in SECRETS if secret in text] == []
    assert "user-data" not in items
    assert set(items["meta-data"]["iam"]) == {"info"}
    assert set(items["meta-data"]["identity-credentials"]["ec2"]) == {"info"}


@pytest.mark.slow
def test_secrets_and_user_data_when_asked(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    asked = {"endpoint": imds_simulator.url, "include_secrets": True, "include_user_data": True}
    grains = salt_call(opted_in(minion(asked)), "grains.items").value
    credentials = grains["meta-data"]["iam"]["security-credentials"]
    (role,) = credentials
    assert json.loads(credentials[role])["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert "simulator-user-data-secret" in grains["user-data"]


@pytest.mark.slow
def test_off_unless_opted_in(imds_simulator: Simulator, minion: Callable[..., Minion]) -> None:
    grains = salt_call(minion({"endpoint": imds_simulator.url}), "grains.items").value
    assert grains["ec2"]["region"] == "eu-central-1"
    assert not {"meta-data", "dynamic", "user-data"} & set(grains)


@pytest.mark.slow
def test_a_failing_imds_omits_the_grains_with_one_warning(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    imds_simulator.add_fault(path="/latest/dynamic/*", status=500)
    target = opted_in(minion({"endpoint": imds_simulator.url, "attempts": 1}))
    grains = salt_call(target, "grains.items").value
    assert "meta-data" not in grains
    warnings = [line for line in loud_lines(target.log) if "metadata grains" in line]
    assert len(warnings) == 1, loud_lines(target.log)
    assert "metadata grains omitted: reading instance metadata from" in warnings[0]


class _EndlessIMDS:
    """Not IMDS: every listing lists a deeper one (or very many entries)."""

    def __init__(self, wide: bool, listed: str = "deeper/") -> None:
        self.wide = wide
        self.listed = listed
        self.read = 0

    def fetch(self, paths: Any, follow: Any) -> Dict[str, Any]:
        queue, outcomes = list(paths), {}
        while queue:
            path = queue.pop(0)
            self.read += 1
            body = "\n".join("e{}/".format(i) for i in range(3000)) if self.wide else self.listed
            outcomes[path] = body.encode()
            queue.extend(follow(path, outcomes[path]))
        return outcomes


@pytest.mark.parametrize("wide", [False, True])
def test_a_tree_past_the_bounds_is_refused(wide: bool) -> None:
    from saltext.imds_ec2 import metadata3006

    endless = _EndlessIMDS(wide)
    with pytest.raises(metadata3006._TooBig):
        metadata3006.walk(endless)
    assert endless.read <= 2 * MAX_TREE_DEPTH


def test_a_listed_name_that_is_not_a_path_segment_fails_the_walk() -> None:
    from ec2_metadata_core.errors import MalformedResponseError
    from saltext.imds_ec2 import metadata3006

    endless = _EndlessIMDS(False, listed="../../api/token")
    with pytest.raises(MalformedResponseError, match="not a plain name"):
        metadata3006.walk(endless)
    assert endless.read == 2  # meta-data/ and dynamic/, nothing they named


def matrix_env(minor: str) -> Any:
    """Salt ``minor``'s venv of the version matrix (tests/salt/test_salt_versions.py)."""
    from test_salt_versions import salt_envs

    (env,) = [env for env in salt_envs() if env.minor == minor]
    if not (env.bin / "salt-call").exists():
        message = "no {}: run make salt-envs".format(env.bin.parent)
        if os.environ.get("SALT_MATRIX_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return env


@pytest.mark.slow
def test_the_3006_grains_on_salt_3008_which_dropped_them(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    env = matrix_env("3008")
    call = env.bin / "salt-call"
    target = opted_in(minion({"endpoint": imds_simulator.url}))
    version = salt_call(target, "grains.get", "saltversion", salt_call=call).value
    zone = "meta-data:placement:availability-zone"
    assert (version, salt_call(target, "grains.get", zone, salt_call=call).value) == (
        env.version,
        "eu-central-1b",
    )
    assert loud_lines(target.log) == []


@pytest.mark.parametrize("minor", ["3006", "3007"])
def test_salt_3006_and_3007_have_their_own_metadata_grain_so_ours_steps_aside(
    minor: str,
) -> None:
    # Not run with metadata_server_grains: True: their own grain would probe
    # 169.254.169.254. What our __virtual__ looks for is there, and not on 3008:
    probe = "import importlib.util as u; print(u.find_spec('salt.grains.metadata') is not None)"
    for version, expected in ((minor, "True"), ("3008", "False")):
        python = matrix_env(version).bin / "python"
        found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        assert found.stdout.strip() == expected, version
