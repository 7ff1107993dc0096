"""Every command and snippet of README.md and docs/ for the CLI, library and simulator runs.

The pages: README.md, docs/library.md, docs/snapshot.md, docs/cli.md,
docs/events.md and docs/simulator.md (``readme_support.RUN_BY``).

The simulator is started the way the README starts it (``simulate --port``, on
a free port instead of 1338), the endpoint is exported as the README exports it,
and each CLI line runs through ``sh`` as a user pastes it: exit 0, nothing on
stderr, some output. A redirect into ``/etc`` goes to a scratch directory
instead. Library snippets run as written; where a line's comment is a Python
literal (``ec2_metadata.region  # 'eu-central-1'``) the value must match.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from readme_support import pages_run_by

from ec2_metadata_core.events import KINDS

README = "\n".join(
    page.read_text(encoding="utf-8") for page in pages_run_by("test_readme_examples.py")
)
CLI = "python -m ec2_metadata_core"
README_PORT = "1338"
# Blocks that show a pattern to copy rather than something to run.
NOT_RUNNABLE = ("my_code_that_uses_ec2_metadata",)
# Commands that need more than the CLI (a build, a Salt master, a playbook of
# yours); tests/ansible and tests/salt run those tools.
OTHER_TOOLS = ("make ", "ansible-galaxy ", "ansible-playbook ", "pip install ", "salt ", "export ")


def blocks(language: str) -> List[str]:
    return re.findall(r"^```{}\n(.*?)^```".format(language), README, re.M | re.S)


def shell_lines() -> List[str]:
    return [line for block in blocks("sh") for line in block.splitlines() if line.strip()]


def cli_lines() -> List[str]:
    return [
        line for line in shell_lines() if line.startswith(CLI) and " simulate " not in line + " "
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_shell_line_is_run_here_or_by_its_tools_tests() -> None:
    others = [line for line in shell_lines() if not line.startswith(CLI)]
    assert [line for line in others if not line.startswith(OTHER_TOOLS)] == []
    assert len(cli_lines()) >= 10


@pytest.fixture(scope="module")
def readme_simulator() -> Iterator[Tuple[str, Dict[str, str]]]:
    """The simulator started as the README starts it; the environment it exports."""
    start = next(line for line in shell_lines() if line.startswith(CLI + " simulate"))
    port = str(free_port())
    command = re.sub(r"\s+#.*$", "", start).replace(README_PORT, port)
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen(
        ["sh", "-c", "exec " + command], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == "http://127.0.0.1:" + port  # what the README's comment says it prints
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = url
        yield port, env
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("line", cli_lines())
def test_readme_cli_line_runs(
    line: str, readme_simulator: Tuple[str, Dict[str, str]], tmp_path: Path
) -> None:
    port, env = readme_simulator
    command = re.sub(r"\s+#.*$", "", line).replace(":" + README_PORT, ":" + port)
    command = command.replace("> /etc/", "> {}/".format(tmp_path))
    command = command.replace("--output /etc/", "--output {}/".format(tmp_path))
    if re.match(CLI + r" watch(?!.*--(once|exit-on))", command):
        follow_until_first_event(command, env, tmp_path)
        return
    done = subprocess.run(
        ["sh", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (command, done.stderr)
    assert done.stderr == b"", done.stderr
    written = [path.read_bytes() for path in tmp_path.iterdir() if path.is_file()]
    assert done.stdout.strip() or any(written), command


def follow_until_first_event(command: str, env: Dict[str, str], cwd: Path) -> None:
    """A `watch` that runs until stopped: its first line is an event; SIGTERM ends it, 0."""
    proc = subprocess.Popen(
        ["sh", "-c", "exec " + command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["kind"] in KINDS, command
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, (command, err)
    assert err == "", err


@pytest.mark.parametrize(
    "snippet",
    [block for block in blocks("python") if not any(mark in block for mark in NOT_RUNNABLE)],
)
def test_readme_python_snippet_runs(
    snippet: str,
    readme_simulator: Tuple[str, Dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, env = readme_simulator
    snippet = snippet.replace(":" + README_PORT, ":" + port)
    monkeypatch.setenv(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
    )
    namespace: Dict[str, object] = {}
    checked = 0
    for node in ast.parse(snippet).body:
        source = ast.get_source_segment(snippet, node) or ""
        code = compile(ast.Module([node], []), "<README>", "exec")
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "<README>", "eval"), namespace)
            comment = snippet.split(source, 1)[1].split("\n", 1)[0].strip()
            if comment.startswith("# '"):
                assert value == ast.literal_eval(comment[2:]), source
                checked += 1
            continue
        exec(code, namespace)
    if "ec2_metadata.region" in snippet:
        assert checked == 2
    if "snapshot(" in snippet:
        assert namespace["facts"]["region"] == "eu-central-1"  # type: ignore[index]
