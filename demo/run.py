"""`make demo`: the simulator, then the CLI, an Ansible play and salt-call against it.

Everything runs from the project's .venv and talks only to the simulator on
127.0.0.1; temporary files live in one directory removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Dict, List

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


if __name__ == "__main__":
    sys.exit(main())
