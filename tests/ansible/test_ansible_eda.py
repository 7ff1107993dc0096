"""The Event-Driven Ansible source imds.ec2.ec2_metadata_events, run by a real ansible-rulebook.

The collection is the built tarball installed with ansible-galaxy; the
rulebook, playbook and inventory are the ones ansible_collection/README.md
prints. ``ec2_metadata_core`` is poisoned on PYTHONPATH: the source must use
the client shipped in the collection.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest
import yaml
from imds_ansible_env import REPO, VENV_BIN, MissingTool, java_home
from readme_support import readme_block, readme_blocks

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

README = REPO / "ansible_collection" / "README.md"
SPOT_PATH = "meta-data/spot/instance-action"
DRAIN_TASK = "TASK [Leave the load balancer]"
RUN_LINE = "ansible-rulebook --rulebook rulebook.yml -i inventory.yml --verbose"
# A rulebook that records every event it gets, one line per playbook run
# (the event's uuid is unique, so a duplicate would be a second line).
RECORDER = """\
- name: Record every notice
  hosts: localhost
  sources:
    - imds.ec2.ec2_metadata_events:
        interval: 0.2
  rules:
    - name: Any notice
      condition: event.kind is defined
      action:
        run_playbook:
          name: record.yml
          extra_vars:
            line: "{{ event.meta.uuid }} {{ event.kind }} {{ event.instance_id }}"
"""
RECORD = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.lineinfile:
        path: "{recorded}"
        line: "{{ line }}"
        create: true
"""
# What the simulator's default instance has pending when the rulebook starts.
PENDING = ["autoscaling/lifecycle", "maintenance/scheduled", "rebalance/recommendation"]


@pytest.fixture
def rulebook_env(ansible_env: Dict[str, str], imds_simulator: Simulator) -> Dict[str, str]:
    """The Ansible environment plus a Java for ansible-rulebook, pointed at the simulator."""
    try:
        home = java_home()
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    env = dict(ansible_env, JAVA_HOME=str(home))
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds_simulator.url
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The README's rulebook, playbook and inventory, polling fast and draining into tmp_path."""
    rulebook = readme_block(README, "# rulebook.yml")
    assert "interval: 5\n" in rulebook
    (tmp_path / "rulebook.yml").write_text(rulebook.replace("interval: 5\n", "interval: 0.2\n"))
    playbook = readme_block(README, "# drain.yml, your own drain steps go here")
    drained = str(tmp_path / "drained")
    (tmp_path / "drain.yml").write_text(playbook.replace("/run/ec2-spot-drain", drained))
    (tmp_path / "inventory.yml").write_text(readme_block(README, "# inventory.yml"))
    tags = readme_block(README, "# tags-rulebook.yml")
    assert "kinds: [tags]\n" in tags
    (tmp_path / "tags-rulebook.yml").write_text(
        tags.replace("kinds: [tags]\n", "kinds: [tags]\n        interval: 0.2\n")
    )
    retag = readme_block(README, "# retag.yml")
    assert "/run/ec2-owner" in retag
    (tmp_path / "retag.yml").write_text(retag.replace("/run/ec2-owner", str(tmp_path / "owner")))
    return tmp_path


class Rulebook:
    """A running ansible-rulebook; its output goes to a file the test can read at any time."""

    def __init__(
        self, directory: Path, env: Dict[str, str], *args: str, rulebook: str = "rulebook.yml"
    ) -> None:
        self.log = directory / "rulebook.log"
        self._out = self.log.open("w")
        (line,) = readme_block(README, RUN_LINE).splitlines()
        words = [rulebook if word == "rulebook.yml" else word for word in shlex.split(line)[1:]]
        command = [str(VENV_BIN / "ansible-rulebook"), *words, *args]
        self.process = subprocess.Popen(
            command, cwd=str(directory), env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(60)
        self._out.close()
        return self.process.returncode


@pytest.fixture
def rulebook(project: Path, rulebook_env: Dict[str, str]) -> Iterator[Callable[..., Rulebook]]:
    started: List[Rulebook] = []

    def start(*args: str, rulebook: str = "rulebook.yml") -> Rulebook:
        running = Rulebook(project, rulebook_env, *args, rulebook=rulebook)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def spot_reads(sim: Simulator) -> int:
    return sum(n for path, n in sim.stats.by_path.items() if path.endswith(SPOT_PATH))


def wait_for(what: str, done: Callable[[], bool], running: Rulebook, timeout: float = 180) -> None:
    """Poll ``done`` until true; fail with the rulebook's output on timeout or if it exits."""
    deadline = time.monotonic() + timeout
    while not done():
        if running.process.poll() is not None:
            pytest.fail("ansible-rulebook exited before {}:\n{}".format(what, running.output()))
        if time.monotonic() > deadline:
            pytest.fail("no {} in {} s:\n{}".format(what, timeout, running.output()))
        time.sleep(0.2)


def test_a_spot_interruption_runs_the_drain_playbook_once(
    rulebook: Callable[..., Rulebook], project: Path, imds_simulator: Simulator
) -> None:
    running = rulebook()
    # The source is polling, and nothing is pending: the notice below is news.
    wait_for("poll of the spot path", lambda: spot_reads(imds_simulator) >= 2, running)
    notice = imds_simulator.schedule_spot_interruption(120, "stop")
    drained = project / "drained"
    wait_for("drain playbook run", drained.exists, running)
    assert drained.read_text() == "stop at {}\n".format(notice["time"])
    # The notice stays posted while the source polls 20 more times: one run only.
    polled = spot_reads(imds_simulator)
    wait_for("20 more polls", lambda: spot_reads(imds_simulator) >= polled + 20, running)
    output = running.output()
    assert output.count(DRAIN_TASK) == 1, output
    assert "ec2_metadata_core" not in output  # the shipped client, not the poisoned one
    running.stop()


def test_a_bad_argument_stops_the_rulebook_naming_it(
    rulebook: Callable[..., Rulebook], project: Path
) -> None:
    path = project / "rulebook.yml"
    path.write_text(path.read_text().replace("kinds: [spot]", "kinds: [sunspots]"))
    running = rulebook()
    assert running.process.wait(180) != 0
    output = running.output()
    assert "unknown event kind 'sunspots'" in output, output
    # The error, then only the two frames ansible-rulebook logs for any source
    # (our main, its start_source): none from inside the client.
    frames = [line for line in output.splitlines() if re.search(r" - ERROR - /\S+:\d+ ", line)]
    assert len(frames) == 2 and "module_utils" not in "".join(frames), output


def test_each_kind_of_notice_reaches_the_rulebook_once(
    rulebook: Callable[..., Rulebook], project: Path, imds_simulator: Simulator
) -> None:
    (project / "rulebook.yml").write_text(RECORDER)
    recorded = project / "recorded"
    # ansible-rulebook runs a copy of the playbook elsewhere: an absolute path.
    (project / "record.yml").write_text(RECORD.replace("{recorded}", str(recorded)))

    def kinds() -> List[str]:
        if not recorded.exists():
            return []
        lines = recorded.read_text().splitlines()
        assert all(line.endswith(" i-0123456789abcdef0") for line in lines), lines
        return sorted(line.split()[1] for line in lines)

    running = rulebook()
    wait_for("pending notices", lambda: kinds() == PENDING, running)
    scheduled: Dict[str, str] = {}
    steps: List[Tuple[Callable[[], object], str]] = [
        (lambda: imds_simulator.schedule_spot_interruption(120), "spot/interruption"),
        (imds_simulator.recommend_rebalance, "rebalance/recommendation"),
        (
            lambda: scheduled.update(imds_simulator.schedule_maintenance("instance-stop", 3600)),
            "maintenance/scheduled",
        ),
        (lambda: imds_simulator.cancel_maintenance(scheduled["EventId"]), "maintenance/cancelled"),
        (lambda: imds_simulator.set_lifecycle_state("Terminated"), "autoscaling/lifecycle"),
        (lambda: imds_simulator.set_tag("Role", "db"), "tags/changed"),
    ]
    expected = list(PENDING)
    for act, kind in steps:
        act()
        expected = sorted([*expected, kind])
        wait_for(kind, lambda expected=expected: kinds() == expected, running)
    polled = spot_reads(imds_simulator)
    wait_for("20 more polls", lambda: spot_reads(imds_simulator) >= polled + 20, running)
    assert kinds() == expected
    running.stop()


def ctl(sim: Simulator, *args: str) -> None:
    """Change the running simulator through its control path, as the README's ctl lines do."""
    command = [sys.executable, "-m", "ec2_metadata_core", "simulate", "ctl"]
    subprocess.run(
        [*command, "--endpoint", sim.url, *args], check=True, capture_output=True, timeout=60
    )


def test_a_hostile_spot_notice_runs_no_playbook(
    rulebook: Callable[..., Rulebook], project: Path, imds_simulator: Simulator
) -> None:
    """The README's condition admits only EC2's three actions: nothing else reaches extra vars."""
    mark = project / "ran"
    running = rulebook("--print-events")
    wait_for("poll of the spot path", lambda: spot_reads(imds_simulator) >= 2, running)
    hostile = {
        "action": "{{ lookup('pipe', 'id > %s') }}" % mark,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120)),
    }
    ctl(imds_simulator, "set", "--json", SPOT_PATH, json.dumps(hostile))
    wait_for("the hostile notice", lambda: str(mark) in running.output(), running)
    ctl(imds_simulator, "spot-interruption", "--in", "120", "--action", "stop")
    drained = project / "drained"
    wait_for("drain playbook run", drained.exists, running)
    assert drained.read_text().startswith("stop at ")
    assert not mark.exists()
    assert running.output().count(DRAIN_TASK) == 1, running.output()
    running.stop()


def test_a_hostile_tag_reaches_the_playbook_as_data(
    rulebook: Callable[..., Rulebook], project: Path, imds_simulator: Simulator
) -> None:
    """The README's tags rulebook: the playbook reads the tag itself (unsafe) and quotes it."""
    marks = project / "marks"
    marks.mkdir()
    value = "{{{{ lookup('pipe', 'id > {0}/jinja') }}}}'; touch {0}/shell; echo '$(touch {0}/shell)"
    value = value.format(marks)
    running = rulebook(rulebook="tags-rulebook.yml")
    wait_for("poll of the tags", lambda: tag_reads(imds_simulator) >= 2, running)
    ctl(imds_simulator, "tag", "Owner", value)
    owner = project / "owner"
    wait_for("retag playbook run", owner.exists, running)
    assert owner.read_text() == value + "\n"
    assert sorted(path.name for path in marks.iterdir()) == []
    running.stop()


def tag_reads(sim: Simulator) -> int:
    return sum(
        n for path, n in sim.stats.by_path.items() if path.endswith("meta-data/tags/instance/")
    )


# What a rulebook may hand a playbook from an event: fields the source writes.
SAFE_FIELDS = {"kind", "path", "time"}
SOURCE = REPO / "ansible_collection" / "extensions" / "eda" / "plugins" / "event_source"


def shown_rulebooks() -> Dict[str, str]:
    """Every rulebook the docs show: the READMEs, docs/ and the source's EXAMPLES."""
    found = {
        "{}: {}".format(path.relative_to(REPO), block.text.splitlines()[0]): block.text
        for path in (README, REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
        for block in readme_blocks(path)
        if "imds.ec2.ec2_metadata_events" in block.text and "rules:" in block.text
    }
    tree = ast.parse((SOURCE / "ec2_metadata_events.py").read_text())
    (examples,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and getattr(node.targets[0], "id", None) == "EXAMPLES"
        and isinstance(node.value, ast.Constant)
    ]
    found["the source's EXAMPLES"] = examples
    return found


def test_every_rulebook_shown_passes_only_what_is_safe_by_construction() -> None:
    """ansible-core templates extra vars: only the source's own fields, or ones a condition
    matched against a fixed list, may reach a playbook."""
    rulebooks = shown_rulebooks()
    assert {
        "ansible_collection/README.md: # rulebook.yml",
        "ansible_collection/README.md: # tags-rulebook.yml",
        "the source's EXAMPLES",
    } <= set(rulebooks), sorted(rulebooks)
    for name, text in rulebooks.items():
        for ruleset in yaml.safe_load(text):
            for rule in ruleset["rules"]:
                condition = rule["condition"]
                checked = set(re.findall(r"event\.([\w.]+) in \[", condition))
                passed = json.dumps(rule["action"])
                used = set(re.findall(r"\bevent\.([\w.]+)", passed))
                assert "ansible_eda" not in passed, name
                assert used <= SAFE_FIELDS | checked, (name, rule["name"], used)
