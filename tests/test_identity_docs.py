"""The examples of docs/identity.md, run as printed (the Salt master config runs in
tests/salt/test_salt_enroll.py, the minion's enroll command there too)."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

from readme_support import readme_block

DOCS = Path(__file__).resolve().parent.parent / "docs" / "identity.md"
DATA = Path(__file__).resolve().parent / "data" / "aws-identity"
BIN = Path(sys.executable).parent


def test_the_library_example_prints_what_the_docs_say() -> None:
    code = readme_block(DOCS, "from ec2_metadata_core.errors import IdentityVerificationError")
    shown = readme_block(DOCS, "{'signature': 'aws:us-east-1:rsa'}")
    namespace: Dict[str, Any] = {
        "document": (DATA / "rspamd-iid0.json").read_bytes(),
        "signature": (DATA / "rspamd-iid0.signature").read_text(),
        "rsa2048": None,
    }
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOCS), "exec"), namespace)
    assert out.getvalue() == shown


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(line: str, port: int) -> list[str]:
    words = shlex.split(line.replace("1338", str(port)), comments=True)
    assert words[0] == "ec2-metadata-core"
    return [str(BIN / words[0]), *words[1:]]


def test_the_simulator_and_cli_examples_run(tmp_path: Path) -> None:
    port = free_port()
    serve, verify = readme_block(
        DOCS, "ec2-metadata-core simulate --port 1338 --identity-cert simulator.pem &"
    ).splitlines()
    env = dict(os.environ)
    server = subprocess.Popen(
        command(serve.rstrip("& "), port), cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "http://127.0.0.1:{}".format(port)
        done = subprocess.run(command(verify, port), cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert '"instanceId": "i-0123456789abcdef0"' in done.stdout
        # The file examples: a real AWS document, and the simulator's rsa2048 saved to a file.
        endpoint = "--endpoint=http://127.0.0.1:{}".format(port)
        rsa2048 = subprocess.run(
            [str(BIN / "ec2-metadata-core"), endpoint, "get", "instance_identity_rsa2048"],
            capture_output=True,
            text=True,
        )
        assert rsa2048.returncode == 0, rsa2048.stderr
        (tmp_path / "doc.rsa2048").write_text(rsa2048.stdout)
        (tmp_path / "doc.json").write_bytes((DATA / "rspamd-iid1.json").read_bytes())
        (tmp_path / "doc.sig").write_bytes((DATA / "rspamd-iid1.signature").read_bytes())
        for line in readme_block(
            DOCS, "ec2-metadata-core identity --document doc.json --signature doc.sig"
        ).splitlines():
            done = subprocess.run(command(line, port), cwd=tmp_path, capture_output=True, text=True)
            assert done.returncode == 0, (line, done.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
