"""docs/migrate-amazon-aws.md, run: its plays, its table, its warning, its failure.

The task lists of the page run as printed, in a play on this machine, with
ansible-playbook from the installed tarball against the simulator. The
"before" block names amazon.aws, which is not installed: it runs with the
module renamed and nothing else changed, which is the mistake the page warns
about.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from imds_ansible_env import Run
from readme_support import Block, readme_blocks

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrate-amazon-aws.md"
SAID = "i-0123456789abcdef0 in eu-central-1"


def blocks() -> List[Block]:
    return readme_blocks(PAGE)


def block(first_line: str) -> str:
    (text,) = [b.text for b in blocks() if b.text.splitlines()[0] == first_line]
    return text


def tasks(first_line: str) -> List[Dict[str, Any]]:
    loaded: List[Dict[str, Any]] = yaml.safe_load(block(first_line))
    return loaded


def play(items: List[Dict[str, Any]]) -> str:
    return yaml.safe_dump(
        [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": items}],
        sort_keys=False,
    )


@pytest.fixture
def run_tasks(
    imds_simulator: Simulator, run_ansible: Callable[..., Run], write: Callable[[str, str], Path]
) -> Callable[..., Run]:
    def run(*items: Dict[str, Any]) -> Run:
        write("play.yml", play(list(items)))
        return run_ansible("ansible-playbook", "play.yml")

    return run


def test_every_block_is_run() -> None:
    firsts = [b.text.splitlines()[0] for b in blocks()]
    assert firsts == [
        "# before",
        "# step 1",
        "grep -rn 'ansible_ec2_' --include='*.yml' --include='*.yaml' --include='*.j2' .",
        "# step 2",
    ]


def test_step_1_runs_a_task_written_for_amazon_aws(run_tasks: Callable[..., Run]) -> None:
    result = run_tasks(*tasks("# step 1"))
    assert result.returncode == 0, result.output
    assert '"msg": "{}"'.format(SAID) in result.output
    assert "WARNING" not in result.output


def test_step_2_says_the_same_from_the_new_fact(run_tasks: Callable[..., Run]) -> None:
    result = run_tasks(*tasks("# step 2"))
    assert result.returncode == 0, result.output
    assert '"msg": "{}"'.format(SAID) in result.output


def test_renaming_alone_fails_the_task_that_reads_a_flat_fact(
    run_tasks: Callable[..., Run],
) -> None:
    (before,) = tasks("# before")
    renamed = {key.replace("amazon.aws.", "imds.ec2."): value for key, value in before.items()}
    reader = tasks("# step 1")[1]
    result = run_tasks(renamed, reader)
    assert result.returncode != 0
    assert "'ansible_ec2_instance_id' is undefined" in result.output


def test_flat_facts_left_from_an_earlier_gather_are_warned_about(
    run_tasks: Callable[..., Run],
) -> None:
    legacy, _ = tasks("# step 1")
    plain, _ = tasks("# step 2")
    result = run_tasks(legacy, plain)
    assert result.returncode == 0, result.output
    said = " ".join(result.output.split())
    page = " ".join(PAGE.read_text().split())
    start = page.index("`this host has ") + 1
    shown = page[start : page.index(": ...`", start)]
    assert "[WARNING]: " + shown in said, result.output
    # Not on the gather that refreshes them, nor on a host that never had them.
    assert said.count("flat ansible_ec2_* facts") == 1


def test_the_table_maps_every_flat_fact_to_the_same_value(
    run_tasks: Callable[..., Run], tmp_path: Path
) -> None:
    rows = []
    for line in PAGE.read_text().splitlines():
        cells = [c.strip().strip("`").replace("\\|", "|") for c in line.strip("|").split(" | ")]
        if line.startswith("| `ansible_ec2_"):
            rows.append(cells)
    assert len(rows) >= 12
    pairs = ", ".join("[{}, {}]".format(old, new) for old, new in rows)
    dump = tmp_path / "pairs.json"
    result = run_tasks(
        {"imds.ec2.ec2_metadata_facts": {"legacy_facts": True}},
        {"ansible.builtin.copy": {"dest": str(dump), "content": "{{ [%s] | to_json }}" % pairs}},
    )
    assert result.returncode == 0, result.output
    for (old, new), (flat, value) in zip(rows, json.loads(dump.read_text())):
        assert flat == value, (old, new)
        assert flat not in (None, "", [], {}), old


def test_the_grep_line_finds_the_flat_reads(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text(block("# step 1"))
    (tmp_path / "new.yml").write_text(block("# step 2"))
    found = subprocess.run(
        block("grep -rn 'ansible_ec2_' --include='*.yml' --include='*.yaml' --include='*.j2' ."),
        shell=True,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert [line.split(":", 1)[0] for line in found] == ["./site.yml"]
