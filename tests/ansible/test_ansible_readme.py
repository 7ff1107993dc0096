"""Every command, playbook, config and message ansible_collection/README.md shows, run for real.

The README's blocks are read from the file: a block added there that no test
here runs fails ``test_every_block_is_run``. Playbooks run with
ansible-playbook from the installed tarball against the simulator; task lists
run inside a play on this machine; ansible-pull pulls a local git repository
(the README's https:// URL replaced by its file:// URL).
"""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
import yaml
from imds_ansible_env import Built, Run, git_repo, local_inventory
from readme_support import Block, readme_blocks

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "ansible_collection" / "README.md"
INSTANCE_ID = "i-0123456789abcdef0"
REFUSED = "http://127.0.0.1:9"  # tests/conftest.py: the AWS variable points here


def blocks() -> List[Block]:
    return readme_blocks(README)


def first_comment(block: Block) -> str:
    line = block.text.splitlines()[0]
    return line[2:].split(",")[0].strip() if line.startswith("# ") else ""


def data(block: Block) -> object:
    return yaml.safe_load(block.text)


def is_play(block: Block) -> bool:
    loaded = data(block) if block.language == "yaml" else None
    return isinstance(loaded, list) and all("hosts" in item for item in loaded)


def is_tasks(block: Block) -> bool:
    loaded = data(block) if block.language == "yaml" else None
    return isinstance(loaded, list) and not is_play(block)


def kind(block: Block) -> str:
    name = first_comment(block)
    if block.language == "sh" and "make collection" in block.text:
        return "install"
    if block.language == "sh" and "ansible-pull" in block.text:
        return "pull"
    if block.language == "ini" and name == "ansible.cfg":
        return "ansible.cfg"
    if block.language == "" and block.text.startswith("cannot read EC2 instance metadata"):
        return "messages"
    if name == "host_vars/web-01.yml":
        return "host_vars"
    if name in ("instance.imds_ec2.yml", "local.yml"):
        return name
    if name in ("rulebook.yml", "drain.yml", "inventory.yml", "tags-rulebook.yml", "retag.yml"):
        return "event source " + name  # test_ansible_eda.py runs these
    if block.language == "sh" and block.text.startswith("ansible-rulebook "):
        return "event source command"
    if is_play(block):
        return "play for web-01" if "web-01" in block.text else "mixed fleet play"
    if is_tasks(block):
        return "tasks"
    return "unknown"


def test_every_block_is_run() -> None:
    for block in blocks():
        assert kind(block) != "unknown", "no test runs this README block:\n" + block.text


def only(name: str) -> Block:
    found = [block for block in blocks() if kind(block) == name]
    assert found, name
    assert all(block.text == found[0].text for block in found), name
    return found[0]


def test_install_lines_name_the_built_tarball(built: Built, collections_path: Path) -> None:
    """make collection builds it (``built`` runs the same build); ansible-galaxy installs it."""
    lines = [shlex.split(line, comments=True) for line in only("install").text.splitlines()]
    assert lines[0] == ["make", "collection"]
    assert lines[1][:3] == ["ansible-galaxy", "collection", "install"]
    assert Path(lines[1][3]).name == built.tarball.name
    assert (collections_path / "ansible_collections" / "imds" / "ec2" / "MANIFEST.json").is_file()


@pytest.fixture
def play_in(
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
    tmp_path: Path,
) -> Callable[..., Run]:
    """``play_in(play_text, hosts=[...], env={...})``: ansible-playbook on local hosts."""

    def run(play: str, hosts: List[str], env: Optional[Dict[str, str]] = None) -> Run:
        (tmp_path / "inventory").mkdir(exist_ok=True)
        write("inventory/hosts.ini", local_inventory({h: pythons["3.8"] for h in hosts}))
        playbook = write("play.yml", play)
        return run_ansible("ansible-playbook", "-i", "inventory", str(playbook), env=env)

    return run


def test_task_lists(imds_simulator: Simulator, play_in: Callable[..., Run]) -> None:
    tasks = [block for block in blocks() if kind(block) == "tasks"]
    assert len(tasks) == 2
    for block in tasks:
        play = "- hosts: targets\n  gather_facts: false\n  tasks:\n" + textwrap.indent(
            block.text, "    "
        )
        result = play_in(play, ["web-01"])
        assert result.returncode == 0, result.output
        assert "failed=0" in result.output
    assert "eu-central-1b web" in result.output  # the legacy names' debug line


def test_host_vars_and_the_play_that_keeps_them(
    imds_simulator: Simulator, play_in: Callable[..., Run], tmp_path: Path
) -> None:
    (tmp_path / "inventory" / "host_vars").mkdir(parents=True)
    (tmp_path / "inventory" / "host_vars" / "web-01.yml").write_text(only("host_vars").text)
    result = play_in(only("play for web-01").text, ["web-01"])
    assert result.returncode == 0, result.output
    assert "ok=3" in result.output and "failed=0" in result.output  # facts, module, assert


def test_mixed_fleet_config_and_play_on_and_off_ec2(
    imds_simulator: Simulator, play_in: Callable[..., Run], write: Callable[[str, str], Path]
) -> None:
    config = write("ansible.cfg", only("ansible.cfg").text)
    env = {"ANSIBLE_CONFIG": str(config)}
    on = play_in(only("mixed fleet play").text, ["web-01"], env)
    assert on.returncode == 0, on.output
    assert "web-01 runs in eu-central-1" in on.output
    off = play_in(
        only("mixed fleet play").text,
        ["laptop"],
        dict(env, AWS_EC2_METADATA_SERVICE_ENDPOINT=REFUSED),
    )
    assert off.returncode == 0, off.output
    assert "failed=0" in off.output and "skipping: [laptop]" in off.output


def test_the_off_ec2_messages(
    imds_simulator_factory: Callable[..., Simulator], play_in: Callable[..., Run], tmp_path: Path
) -> None:
    """The README's two messages, at loopback endpoints instead of 169.254.169.254."""
    silent = imds_simulator_factory(silent=True)
    refused_line, silent_line = only("messages").text.splitlines()
    play = """
- hosts: targets
  gather_facts: false
  tasks:
    - imds.ec2.ec2_metadata_facts:
      register: gathered
      ignore_errors: true
    - ansible.builtin.copy:
        dest: "{{ playbook_dir }}/msg.json"
        content: "{{ gathered.msg | to_json }}"
        mode: "0600"
"""
    for line, endpoint in ((refused_line, REFUSED), (silent_line, silent.url)):
        result = play_in(play, ["web-01"], {"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint})
        assert result.returncode == 0, result.output
        message = json.loads((tmp_path / "msg.json").read_text())
        host_port = endpoint.split("//", 1)[1]
        expected = line.replace("169.254.169.254:80", host_port).replace(
            "http://169.254.169.254", endpoint
        )
        if expected.endswith("..."):
            assert message.startswith(expected[:-3]), message
        else:
            assert message == expected


def test_ansible_pull_and_ansible_inventory_lines(
    imds_simulator: Simulator, run_ansible: Callable[..., Run], tmp_path: Path
) -> None:
    url = git_repo(
        tmp_path / "site",
        {
            "instance.imds_ec2.yml": only("instance.imds_ec2.yml").text,
            "local.yml": only("local.yml").text,
        },
    )
    pull, graph = [shlex.split(line) for line in only("pull").text.splitlines()]
    env = {"HOME": str(tmp_path / "home")}  # ansible-pull checks out into ~/.ansible/pull
    pull = [url if word.startswith("https://") else word for word in pull]
    pulled = run_ansible(*pull, env=env)
    assert pulled.returncode == 0, pulled.output
    assert "{} is in ['az_eu_central_1b', 'role_web']".format(INSTANCE_ID) in pulled.output
    checkout = next((tmp_path / "home" / ".ansible" / "pull").iterdir())
    graph[graph.index("instance.imds_ec2.yml")] = str(checkout / "instance.imds_ec2.yml")
    graphed = run_ansible(*graph, env=env)
    assert graphed.returncode == 0, graphed.output
    assert "@role_web:" in graphed.output and "localhost" in graphed.output


def test_the_project_readme_play(imds_simulator: Simulator, play_in: Callable[..., Run]) -> None:
    """The front door's Ansible example (README.md at the top of the repository) as written."""
    (play,) = [
        block
        for block in readme_blocks(README.parents[1] / "README.md")
        if block.language == "yaml" and is_play(block)
    ]
    result = play_in(play.text, ["web-01"])
    assert result.returncode == 0, result.output
    assert "eu-central-1 web-asg" in result.output  # the region and the Auto Scaling group tag
