"""The extension under every Salt minor it declares: 3006 (the LTS), 3007 and 3008.

Each minor has its own venv (``make salt-envs``: ``.venv-salt-NNNN/`` pinned by
requirements/salt-NNNN.txt; 3008 is the project's .venv, pinned by
requirements/dev.txt). Through each one's own ``salt-call --local``: the grains
and targeting on them, the documented states with a hostile tag, and the beacon
in Salt's beacon loop. salt_grains/README.md's "Tested with" line names
exactly these versions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable, List, NamedTuple

import pytest
from readme_support import readme_block
from salt_grains_support import BIN, SECRETS, Minion, hostile, loud_lines, salt_call

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README = REPO / "salt_grains" / "README.md"
TRUST_DOC = REPO / "docs" / "trust.md"
DRIVER = Path(__file__).with_name("beacon_driver.py")


class SaltEnv(NamedTuple):
    minor: str  # "3006"
    version: str  # the pinned release, "3006.29"
    bin: Path  # the venv's bin/


def pinned_salt(requirements: Path) -> str:
    found = re.search(r"(?m)^salt==(\S+)$", requirements.read_text(encoding="utf-8"))
    assert found, "no salt== pin in {}".format(requirements)
    return found.group(1)


def salt_envs() -> List[SaltEnv]:
    """One per requirements/salt-NNNN.txt (as the Makefile makes them), and .venv."""
    envs = [
        SaltEnv(
            path.stem[len("salt-") :],
            pinned_salt(path),
            REPO / ".venv-{}".format(path.stem) / "bin",
        )
        for path in sorted((REPO / "requirements").glob("salt-*.txt"))
    ]
    main = pinned_salt(REPO / "requirements" / "dev.txt")
    return [*envs, SaltEnv(main.split(".")[0], main, BIN)]


@pytest.fixture(params=salt_envs(), ids=lambda env: "salt-" + env.minor)
def salt_env(request: pytest.FixtureRequest) -> SaltEnv:
    env: SaltEnv = request.param
    if not (env.bin / "salt-call").exists():
        message = "no {}: run make salt-envs".format(env.bin.parent.relative_to(REPO))
        if os.environ.get("SALT_MATRIX_REQUIRED"):  # make test: the matrix is not optional
            pytest.fail(message)
        pytest.skip(message)
    return env


@pytest.fixture
def on_ec2(imds_simulator: Simulator, minion: Callable[..., Minion]) -> Minion:
    return minion({"endpoint": imds_simulator.url})


def test_the_tested_with_line_names_the_matrix() -> None:
    line = re.search(r"Tested with Salt (.*?)\.(?:\s|$)", README.read_text(), re.DOTALL)
    assert line, "no 'Tested with Salt ...' sentence in salt_grains/README.md"
    named = re.findall(r"\b\d{4}\.\d+\b", line.group(1))
    assert named == [env.version for env in salt_envs()]


def test_grains_and_targeting_through_salt_call(salt_env: SaltEnv, on_ec2: Minion) -> None:
    call = salt_env.bin / "salt-call"
    grains = salt_call(on_ec2, "grains.items", salt_call=call)
    assert grains.value["saltversion"] == salt_env.version
    assert grains.value["ec2"]["availability_zone"] == "eu-central-1b"
    assert grains.value["ec2"]["tags"]["Role"] == "web"
    assert grains.value["ec2_tags"]["aws:autoscaling:groupName"] == "web-asg"
    assert grains.value["ec2_tags_safe"]["aws_autoscaling_groupName"] == "web-asg"
    assert [s for s in SECRETS if s in grains.stdout] == []
    target = (
        "G@ec2:availability_zone:eu-central-1b and G|@ec2|tags|aws:autoscaling:groupName|web-asg"
    )
    assert salt_call(on_ec2, "match.compound", target, salt_call=call).value is True
    assert loud_lines(on_ec2.log) == []


def test_a_hostile_tag_stays_literal_in_the_documented_states(
    salt_env: SaltEnv, on_ec2: Minion, imds_simulator: Simulator, tmp_path: Path
) -> None:
    """salt_grains/README.md's state and docs/trust.md's cmd.run, as printed, with a tag
    that unquoted would add a cmd.run state of its own."""
    marker = tmp_path / "pwned"
    value = hostile(marker)
    imds_simulator.set("meta-data/tags/instance/Role", value)
    srv = on_ec2.root / "srv"
    (srv / "region.sls").write_text(readme_block(README, "# $ROOT/srv/region.sls"))
    (srv / "role.sls").write_text(readme_block(TRUST_DOC, "# $ROOT/srv/role.sls"))
    call = salt_env.bin / "salt-call"
    region_file = str(on_ec2.root / "region.txt")
    shown = salt_call(on_ec2, "state.show_sls", "region,role", salt_call=call).value
    assert sorted(shown) == sorted([region_file, "say the role"]), shown  # nothing added
    assert {key for key in shown[region_file] if not key.startswith("__")} == {"file"}
    assert shown[region_file]["file"][0] == {"contents": "eu-central-1 " + value}
    applied = salt_call(on_ec2, "state.apply", "region,role", salt_call=call).value
    assert sorted(key.split("_|-")[0] for key in applied) == ["cmd", "file"], applied
    assert all(result["result"] is True for result in applied.values()), applied
    (said,) = [r for key, r in applied.items() if key.startswith("cmd_|-say the role_|-")]
    assert said["changes"]["stdout"] == value  # one shell word, printed as it is
    written = (on_ec2.root / "region.txt").read_text(encoding="utf-8")
    assert written == "eu-central-1 " + value + "\n"
    assert not marker.exists()


def test_the_beacon_in_salts_beacon_loop(
    salt_env: SaltEnv, imds_simulator: Simulator, tmp_path: Path
) -> None:
    loop = subprocess.Popen(
        [str(salt_env.bin / "python"), str(DRIVER), imds_simulator.url, str(tmp_path / "cache")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert loop.stdin is not None and loop.stdout is not None

    def run() -> List[Any]:
        assert loop.stdin is not None and loop.stdout is not None
        loop.stdin.write("run\n")
        loop.stdin.flush()
        fired: List[Any] = json.loads(loop.stdout.readline())
        return fired

    try:
        assert json.loads(loop.stdout.readline()) == {"salt": salt_env.version}
        prefix = "salt/beacon/web-1/ec2_metadata/"
        pending = ["autoscaling/lifecycle", "maintenance/scheduled", "rebalance/recommendation"]
        assert sorted(event["tag"] for event in run()) == [prefix + kind for kind in pending]
        assert run() == []
        notice = {"action": "terminate", "time": "2026-11-28T08:22:00Z"}
        imds_simulator.set("meta-data/spot/instance-action", {"$json": notice})
        (spot,) = run()
        assert spot["tag"] == prefix + "spot/interruption"
        assert spot["data"]["notice"] == notice and spot["data"]["time"] == notice["time"]
        value = hostile(tmp_path / "pwned")
        imds_simulator.set_tag("Team", value)  # a new key: reported at the next poll
        (changed,) = run()
        assert changed["tag"] == prefix + "tags/changed"
        assert changed["data"]["notice"]["added"] == {"Team": value}
    finally:
        loop.stdin.close()
        assert loop.wait(timeout=60) == 0
