"""`make demo`: the simulator, then the CLI, an Ansible play and salt-call against it,
then a spot interruption posted on the simulator reaching a Salt master as a beacon
event and an ansible-rulebook that runs a playbook on it, then a Salt minion accepted
by proof of its signed identity document (demo/enroll.py).

Everything runs from the project's .venv and talks only to the simulator on
127.0.0.1; temporary files live in one directory removed at the end.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from saltext.imds_ec2.local import write_local_minion

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def step(title: str) -> None:
    print("\n== {} ==".format(title), flush=True)


def run(command: List[str], env: Dict[str, str], show: bool = True) -> str:
    """Run a command, echo it and its output; stop the demo if it fails."""
    print("$ " + " ".join(command[:1] + [c if " " not in c else repr(c) for c in command[1:]]))
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if show and done.stdout.strip():
        print(textwrap.indent(done.stdout.rstrip(), "  "))
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit("demo: `{}` failed ({})".format(command[0], done.returncode))
    return done.stdout


def main() -> int:
    sim = subprocess.Popen(
        [str(BIN / "python"), "-m", "ec2_metadata_core", "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit("demo: the simulator did not start")
        env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=url)
        env["PATH"] = "{}{}{}".format(BIN, os.pathsep, env.get("PATH", ""))
        step("IMDS simulator at {} (a two-interface instance with tags)".format(url))
        cli = [str(BIN / "ec2-metadata-core")]
        run([*cli, "get", "region"], env)
        run([*cli, "get", "tags.aws:autoscaling:groupName"], env)
        run([*cli, "dump", "--keys", "availability_zone,instance_type,tags"], env)
        flat = run([*cli, "dump", "--format", "env"], env, show=False).splitlines()
        print("  " + "\n  ".join(line for line in flat if "_tags_" in line))
        with tempfile.TemporaryDirectory(prefix="imds-demo-") as tmp:
            ansible(Path(tmp), env)
            salt(Path(tmp), env)
            notices(Path(tmp), env, url)
            from enroll import enrollment  # demo/enroll.py

            enrollment(Path(tmp), env)
    finally:
        sim.terminate()
        sim.wait(10)
    print("\ndemo: done")
    return 0


def ansible(tmp: Path, env: Dict[str, str]) -> None:
    step("Ansible: imds.ec2.ec2_metadata_facts from the built collection")
    out = run([str(BIN / "python"), "ansible_collection/build.py"], env, show=False)
    tarball = out.strip().splitlines()[-1].split()[-1]
    collections = tmp / "collections"
    env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOCAL_TEMP=str(tmp / "ans"))
    env.update(ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_NOCOLOR="1")
    galaxy = str(BIN / "ansible-galaxy")
    run([galaxy, "collection", "install", tarball, "-p", str(collections)], env)
    playbook = tmp / "site.yml"
    playbook.write_text(
        textwrap.dedent(
            """\
            - hosts: localhost
              connection: local
              gather_facts: false
              tasks:
                - imds.ec2.ec2_metadata_facts:
                - ansible.builtin.debug:
                    msg: >-
                      {{ ansible_facts.ec2.instance_id }} in {{ ansible_facts.ec2.region }}
                      ({{ ansible_facts.ec2.availability_zone }}), role
                      {{ ansible_facts.ec2.tags.Role }}, subnet
                      {{ ansible_facts.ec2.network_interfaces[ansible_facts.ec2.mac].subnet_id }}
            """
        ),
        encoding="utf-8",
    )
    run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            "ansible_python_interpreter={}".format(BIN / "python"),
        ],
        env,
    )


def salt(tmp: Path, env: Dict[str, str]) -> None:
    step("Salt: the ec2 grains, installed with pip as a Salt extension")
    conf = write_local_minion(tmp / "salt", "demo-minion")
    salt_call = [str(BIN / "salt-call"), "--local", "-c", str(conf), "--log-level=quiet"]
    run([*salt_call, "grains.get", "ec2:availability_zone"], env)
    run([*salt_call, "match.grain", "ec2:tags:Role:web"], env)
    run([*salt_call, "grains.get", "ec2_tags_safe:aws_autoscaling_groupName"], env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, done: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("demo: no {} after {:.0f} s".format(what, timeout))
        time.sleep(0.2)


def salt_configs(root: Path, master: Dict[str, Any], minion: Dict[str, Any]) -> Dict[str, Path]:
    """Config dirs of a salt-master and a salt-minion on loopback, with these settings added."""
    ports = {"publish_port": free_port(), "ret_port": free_port()}
    common = {"user": getpass.getuser(), "root_dir": str(root), **ports}
    configs = {
        "master": dict(common, interface="127.0.0.1", log_file=str(root / "master.log")),
        "minion": dict(common, master="127.0.0.1", master_port=ports["ret_port"]),
    }
    configs["minion"].update(log_file=str(root / "minion.log"), enable_fqdns_grains=False)
    configs["master"].update(master)
    configs["minion"].update(minion)
    dirs = {}
    for name, config in configs.items():
        confdir = root / "conf-{}".format(name)
        confdir.mkdir(parents=True)
        (confdir / name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        dirs[name] = confdir
    return dirs


def salt_pair(root: Path, url: str) -> Dict[str, Path]:
    """A salt-master that accepts anyone and a salt-minion with the ec2_metadata beacon."""
    minion: Dict[str, Any] = {"id": "demo-minion", "loop_interval": 1}
    minion["ec2_metadata"] = {"endpoint": url}
    minion["beacons"] = {"ec2_metadata": [{"interval": 1}, {"kinds": ["spot"]}]}
    return salt_configs(root, {"auto_accept": True}, minion)


RULEBOOK = """\
- name: Drain this instance before EC2 interrupts it
  hosts: localhost
  sources:
    - imds.ec2.ec2_metadata_events:
        interval: 1
        kinds: [spot]
  rules:
    - name: Spot interruption
      condition: event.kind == "spot/interruption"
      actions:
        - run_playbook:
            name: drain.yml
            extra_vars:
              notice: "{{ event.notice }}"
        - shutdown:
            delay: 0
"""
DRAIN = """\
- name: Drain
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Leave the load balancer
      ansible.builtin.debug:
        msg: "draining before the {{ notice.action }} at {{ notice.time }}"
"""


def notices(tmp: Path, env: Dict[str, str], url: str) -> None:
    step("Events: a spot interruption as a Salt beacon event and an Event-Driven Ansible rule")
    salt, eda = tmp / "salt-events", tmp / "eda"
    confs = salt_pair(salt, url)
    eda.mkdir()
    (eda / "rulebook.yml").write_text(RULEBOOK, encoding="utf-8")
    (eda / "drain.yml").write_text(DRAIN, encoding="utf-8")
    inventory = "localhost ansible_connection=local ansible_python_interpreter={}\n"
    (eda / "inventory").write_text(inventory.format(BIN / "python"), encoding="utf-8")
    eda_env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_NOCOLOR="1")
    started: List[subprocess.Popen[str]] = []

    def start(
        command: List[str], log: Path, where: Path, with_env: Dict[str, str]
    ) -> Callable[[], bool]:
        """Start ``command`` with its output in ``log``; returns "has it exited?"."""
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                env=with_env,
                cwd=str(where),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append(process)
        return lambda: process.poll() is not None

    master = ["-c", str(confs["master"])]
    try:
        start([str(BIN / "salt-master"), *master, "-l", "quiet"], salt / "master.out", salt, env)
        minion = [str(BIN / "salt-minion"), "-c", str(confs["minion"]), "-l", "quiet"]
        start(minion, salt / "minion.out", salt, env)
        ping = [str(BIN / "salt"), *master, "--out=json", "--timeout=5", "demo-minion", "test.ping"]

        def answers() -> bool:
            done = subprocess.run(ping, env=env, capture_output=True, text=True, check=False)
            return '"demo-minion": true' in done.stdout

        wait_for("answer from the Salt minion", answers)
        print("  a salt-master and a salt-minion with `beacons: {ec2_metadata: [{interval: 1}]}`")
        listen = [str(BIN / "salt-run"), *master, "--out=quiet", "state.event", "count=1"]
        listen += ["pretty=True", "tagmatch=salt/beacon/*/ec2_metadata/spot/*"]
        heard = start(listen, salt / "event.out", salt, env)
        rulebook = [str(BIN / "ansible-rulebook"), "--rulebook", "rulebook.yml", "-i", "inventory"]
        ruled = start([*rulebook, "--verbose"], eda / "rulebook.out", eda, eda_env)
        print("  ansible-rulebook with the imds.ec2.ec2_metadata_events source")
        wait_for(
            "ansible-rulebook waiting for events",
            lambda: ruled() or "Waiting for events" in (eda / "rulebook.out").read_text(),
        )
        if ruled():
            sys.stderr.write((eda / "rulebook.out").read_text())
            raise SystemExit("demo: ansible-rulebook failed")
        ctl = [str(BIN / "ec2-metadata-core"), "simulate", "ctl", "--endpoint", url]
        run([*ctl, "spot-interruption", "--in", "120"], env)
        wait_for("Salt event", heard)
        shown = (salt / "event.out").read_text()
        print("  the master's event bus:")
        print(textwrap.indent(shown[shown.find("salt/beacon/") : shown.rfind("}") + 1], "    "))
        wait_for("rulebook run", ruled)
        output = (eda / "rulebook.out").read_text()
        played = output[output.find("TASK [Leave") : output.find("PLAY RECAP")].rstrip()
        print("  ansible-rulebook ran drain.yml:")
        print(textwrap.indent(played, "    "))
    finally:
        stop_all(started)


def stop_all(processes: List[subprocess.Popen[Any]]) -> None:
    """Stop every process at once: the Salt daemons take a while each."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
