"""`make demo`, last part: an autoscaled minion accepted by proof of its identity.

A simulated instance that signs its identity document (its certificate
written with --identity-cert), a salt-master with the imds_ec2_enroll engine
and salt-api's webhook, and a salt-minion whose key stays pending until it
posts its proof. docs/identity.md is the reference.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

from run import BIN, free_port, run, salt_configs, step, stop_all, wait_for

ACCOUNT = "123456789012"
INSTANCE = "i-0123456789abcdef0"


def configs(root: Path, sim_url: str, cert: Path, api_port: int) -> Dict[str, Path]:
    """A salt-master with the imds_ec2_enroll engine and salt-api; a minion of the instance."""
    master: Dict[str, Any] = {
        "rest_cherrypy": {
            "host": "127.0.0.1",
            "port": api_port,
            "disable_ssl": True,  # loopback only; use TLS anywhere else
            "webhook_disable_auth": True,
        },
        "engines": [{"imds_ec2_enroll": {"accounts": [ACCOUNT], "trust": [str(cert)]}}],
    }
    minion = {"id": INSTANCE, "acceptance_wait_time": 1, "acceptance_wait_time_max": 1}
    minion["ec2_metadata"] = {"endpoint": sim_url}
    return salt_configs(root, master, minion)


def enrollment(tmp: Path, env: Dict[str, str]) -> None:
    step("Salt: an autoscaled minion accepted by proof of its signed identity document")
    root = tmp / "salt-enroll"
    root.mkdir()
    cert = root / "simulator.pem"
    python = str(BIN / "python")
    started: List[subprocess.Popen[Any]] = []
    sim = subprocess.Popen(
        [python, "-m", "ec2_metadata_core", "simulate", "--port=0", "--identity-cert", str(cert)],
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(sim)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        env = dict(env, AWS_EC2_METADATA_SERVICE_ENDPOINT=url)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = {"accountId": ACCOUNT, "availabilityZone": "eu-central-1b"}
        document.update(instanceId=INSTANCE, pendingTime=now, region="eu-central-1")
        cli = str(BIN / "ec2-metadata-core")
        ctl = [cli, "simulate", "set", "--json", "dynamic/instance-identity/document"]
        run([*ctl, json.dumps(document)], env)  # just launched: signed again by the simulator
        run([cli, "identity", "--trust", str(cert)], env)
        api_port = free_port()
        dirs = configs(root, url, cert, api_port)
        master = ["-c", str(dirs["master"])]
        for daemon, options in (
            ("master", master),
            ("api", master),
            ("minion", ["-c", str(dirs["minion"])]),
        ):
            command = [str(BIN / ("salt-" + daemon)), *options, "-l", "quiet"]
            with (root / (daemon + ".out")).open("w") as out:  # the daemons' chatter
                started.append(
                    subprocess.Popen(
                        command, env=env, cwd=str(root), stdout=out, stderr=subprocess.STDOUT
                    )
                )
        print(
            "  a salt-master (auto_accept off) with the imds_ec2_enroll engine, salt-api, a minion"
        )
        key_list = [str(BIN / "salt-key"), *master, "-L", "--out=json"]

        def key_state() -> Dict[str, List[str]]:
            done = subprocess.run(key_list, env=env, capture_output=True, text=True, check=False)
            try:
                keys: Dict[str, List[str]] = json.loads(done.stdout)
            except ValueError:
                return {}
            return keys

        wait_for("pending key", lambda: INSTANCE in key_state().get("minions_pre", []))
        print("  salt-key: {} is pending".format(INSTANCE))
        public_key = root / "etc" / "salt" / "pki" / "minion" / "minion.pub"
        hook = "http://127.0.0.1:{}/hook/imds_ec2/enroll".format(api_port)
        enroll = [python, "-m", "saltext.imds_ec2.enroll", "--id", INSTANCE]
        run([*enroll, "--public-key", str(public_key), "--post", hook, "--wait", "90"], env)
        wait_for("accepted key", lambda: INSTANCE in key_state().get("minions", []))
        log = (root / "master.log").read_text(encoding="utf-8", errors="replace")
        decided = [line for line in log.splitlines() if "imds_ec2 enroll:" in line]
        print("  the master's log:")
        print("    " + decided[-1][decided[-1].index("imds_ec2 enroll:") :])
        ping = [str(BIN / "salt"), *master, "--out=json", "--timeout=5", INSTANCE, "test.ping"]

        def answers() -> bool:
            done = subprocess.run(ping, env=env, capture_output=True, text=True, check=False)
            return '": true' in done.stdout

        wait_for("answer from the enrolled minion", answers)
        run(ping, env)
    finally:
        stop_all(started)
