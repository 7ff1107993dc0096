"""Values from IMDS stay data in Ansible, under every ansible-core of the version matrix.

The simulator's instance gets tags that would do harm if Ansible ever rendered
one as a template, or pasted one into a shell command or a YAML document: each
leaves a mark file when it runs. The collection is installed with that
version's own ansible-galaxy; ``ansible-inventory`` reads the collection
README's ``instance.imds_ec2.yml`` unchanged, and a play on that inventory runs
docs/trust.md's Ansible examples, the facts module (legacy names too) and the
role. Nothing may leave a mark, and every value must arrive as it was written.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yaml
from imds_ansible_env import REPO, AnsibleCore, Built, Run, galaxy_install, unmarked
from readme_support import readme_block, readme_blocks

from ec2_metadata_core.model import EC2Metadata
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot

pytestmark = pytest.mark.slow

COLLECTION_README = REPO / "ansible_collection" / "README.md"
TRUST = REPO / "docs" / "trust.md"
ROLE = REPO / "ansible_collection" / "roles" / "instance_summary"
CONFIG_LINE = "# instance.imds_ec2.yml, in the repository next to local.yml"
TRUST_EXAMPLE = "# Quoting IMDS values, as tests/ansible/test_ansible_trust.py runs it"
MARKS = ("jinja", "group", "shell", "newline")


def hostile_tags(marks: Path) -> Dict[str, str]:
    """Tag values that leave ``marks/<name>`` if templated or run by a shell."""
    return {
        "Owner": "{{ lookup('pipe', 'id > %s') }}" % (marks / "jinja"),
        # keyed_groups in the README's inventory config read this one
        "Role": "web{{ lookup('pipe', 'touch %s') }}" % (marks / "group"),
        "Team": "a'; touch {0}; echo '$(touch {0})`touch {0}`".format(marks / "shell"),
        "Note": "x\n- name: injected\n  ansible.builtin.command: touch {}\n#".format(
            marks / "newline"
        ),
    }


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    return path


@pytest.fixture
def tags(imds_simulator: Simulator, marks: Path) -> Dict[str, str]:
    """The simulator's tags, the hostile ones included (all of them, as IMDS lists them)."""
    hostile = hostile_tags(marks)
    for key, value in hostile.items():
        imds_simulator.set_tag(key, value)
    tags = snapshot(EC2Metadata(endpoint=imds_simulator.url))["tags"]
    assert {key: tags[key] for key in hostile} == hostile
    return tags


@pytest.fixture
def run_core(
    ansible_core: AnsibleCore, built: Built, run_ansible: Callable[..., Run], tmp_path: Path
) -> Callable[..., Run]:
    """``run_core(tool, args...)``: this ansible-core's tool, with the collection installed
    by its own ansible-galaxy, as its users install it."""
    path = tmp_path / "collections"
    env = {"ANSIBLE_COLLECTIONS_PATH": str(path)}
    command = galaxy_install(ansible_core.bin, built.tarball, path)
    installed = run_ansible(Path(command[0]).name, *command[1:], env=env, core=ansible_core)
    assert installed.returncode == 0, installed.output
    assert (path / "ansible_collections" / "imds" / "ec2" / "MANIFEST.json").is_file()
    return lambda tool, *args: run_ansible(tool, *args, env=env, core=ansible_core)


def assert_nothing_ran(marks: Path) -> None:
    assert sorted(path.name for path in marks.iterdir()) == [], "a tag value ran"


def safe_group(prefix: str, value: str) -> str:
    """A keyed group's name as the plugin makes it (everything not a word character to ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "{}_{}".format(prefix, value))


def test_ansible_inventory_graph_and_list_render_no_tag(
    ansible_core: AnsibleCore,
    tags: Dict[str, str],
    marks: Path,
    run_core: Callable[..., Run],
    write: Callable[[str, str], Path],
) -> None:
    """Finding 1 of issue 17: ``--graph`` alone ran a tag on ansible-core 2.16 to 2.18."""
    config = write("instance.imds_ec2.yml", readme_block(COLLECTION_README, CONFIG_LINE))
    graph = run_core("ansible-inventory", "-i", str(config), "--graph")
    assert graph.returncode == 0, graph.output
    assert_nothing_ran(marks)
    assert "@{}:".format(safe_group("role", tags["Role"])) in graph.output, graph.output

    listed = run_core("ansible-inventory", "-i", str(config), "--list")
    assert listed.returncode == 0, listed.output
    assert_nothing_ran(marks)
    inventory = json.loads(listed.output[listed.output.index("{") :])
    ec2 = unmarked(inventory["_meta"]["hostvars"]["localhost"]["ansible_ec2"], every=True)
    assert ec2["tags"] == tags
    assert ec2["instance_id"] == "i-0123456789abcdef0"


# The play around the examples: the inventory plugin's host, a value composed
# from a tag, the module's legacy names and the role, each written out as JSON.
PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The inventory's values, and one composed from a tag
      ansible.builtin.copy:
        dest: "{dump}/inventory.json"
        content: "{{{{ {{'tags': ansible_ec2.tags, 'composed': composed_owner}} | to_json }}}}"
        mode: "0600"
{examples}
    - name: What the examples saw
      ansible.builtin.copy:
        dest: "{dump}/facts.json"
        content: "{{{{ {{'tags': ansible_facts.ec2.tags, 'argv': owner.stdout}} | to_json }}}}"
        mode: "0600"
    - name: The flat names of amazon.aws
      imds.ec2.ec2_metadata_facts:
        legacy_facts: true
    - name: What they hold
      ansible.builtin.copy:
        dest: "{dump}/legacy.json"
        content: "{{{{ {{'tags': ansible_ec2_instance_tags,
                       'owner': ansible_ec2_tags_instance_Owner}} | to_json }}}}"
        mode: "0600"
    - name: The role
      ansible.builtin.include_role:
        name: imds.ec2.instance_summary
      vars:
        instance_summary_path: "{dump}/summary.json"
"""


def trust_example() -> str:
    """docs/trust.md's one Ansible example that quotes IMDS values (every yaml block there)."""
    section = TRUST.read_text(encoding="utf-8").split("\n## Ansible\n", 1)[1].split("\n## ", 1)[0]
    yaml_blocks = [block for block in readme_blocks(TRUST) if block.language == "yaml"]
    assert [block.text for block in yaml_blocks if block.text in section] == [
        readme_block(TRUST, TRUST_EXAMPLE)
    ]
    return readme_block(TRUST, TRUST_EXAMPLE)


def test_plays_keep_every_value_literal(
    ansible_core: AnsibleCore,
    tags: Dict[str, str],
    marks: Path,
    run_core: Callable[..., Run],
    write: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    """The facts module, the inventory plugin and docs/trust.md's quoting, with hostile tags."""
    dump = tmp_path / "dump"
    dump.mkdir()
    example = trust_example()
    owners, document = "/var/tmp/instance-owners", "/var/tmp/instance.yml"
    assert owners in example and document in example
    example = example.replace(owners, str(dump / "owners")).replace(document, str(dump / "i.yml"))
    config = write(
        "instance.imds_ec2.yml",
        readme_block(COLLECTION_README, CONFIG_LINE)
        + "compose:\n  composed_owner: ansible_ec2.tags.Owner\n",
    )
    playbook = write(
        "site.yml",
        PLAY.format(dump=dump, examples=textwrap.indent(example, "    ")),
    )
    result = run_core("ansible-playbook", "-i", str(config), str(playbook))
    assert result.returncode == 0, result.output
    assert_nothing_ran(marks)
    assert re.search(
        r"localhost\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", result.output
    )
    # Every task ran, once, and no other: the play's, then the role's.
    role = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    expected = [task["name"] for task in yaml.safe_load(playbook.read_text())[0]["tasks"]]
    expected += [task["name"] for task in role]
    ran = [
        name.replace("imds.ec2.instance_summary : ", "")
        for name in re.findall(r"^TASK \[(.*)\] \*", result.output, re.M)
        if "Validating arguments against arg spec" not in name
    ]
    assert ran == expected, result.output

    def dumped(name: str) -> Any:
        return json.loads((dump / name).read_text())

    assert dumped("inventory.json") == {"tags": tags, "composed": tags["Owner"]}
    assert dumped("facts.json") == {"tags": tags, "argv": tags["Owner"]}
    assert dumped("legacy.json") == {"tags": tags, "owner": tags["Owner"]}
    assert (dump / "owners").read_text() == tags["Owner"] + "\n"
    assert yaml.safe_load((dump / "i.yml").read_text()) == {
        "zone": "eu-central-1b",
        "tags": tags,
    }
    summary = dumped("summary.json")
    assert summary["role"] == tags["Role"]
    assert summary["instance_id"] == "i-0123456789abcdef0"


def test_the_marks_would_show_a_tag_that_ran(
    marks: Path, run_ansible: Callable[..., Run], write: Callable[..., Path]
) -> None:
    """The checks above can fail: the same values, given to Ansible as trusted text, run."""
    hostile = hostile_tags(marks)
    playbook = write(
        "trusted.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.shell: echo {{ owner }} {{ team }}\n"
        "      vars: " + json.dumps({"owner": hostile["Owner"], "team": hostile["Team"]}) + "\n",
    )
    result = run_ansible("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook))
    assert result.returncode == 0, result.output
    assert sorted(path.name for path in marks.iterdir()) == ["jinja", "shell"]
