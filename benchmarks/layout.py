"""Where the benchmarks keep things (shared by setup_peers.py and run.py).

Everything downloaded or built lives under ``benchmarks/.venv-*``, which the
repository's .gitignore already leaves out.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = HERE / "harness"
# Raw runs (large, one per run) stay out of git; the last full run's table is kept.
RESULTS = HERE / "results"
SUMMARY = HERE / "SUMMARY.md"
REQUIREMENTS = ROOT / "requirements" / "bench.txt"

PEERS_VENV = HERE / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
CACHE = HERE / ".venv-cache"
WHEELS = CACHE / "wheels"
# Parent of ansible_collections/amazon/aws, extracted from the ansible wheel.
AMAZON_AWS_ROOT = CACHE / "amazon-aws"
AMAZON_AWS = AMAZON_AWS_ROOT / "ansible_collections" / "amazon" / "aws"
AMAZON_MODULE = AMAZON_AWS / "plugins" / "modules" / "ec2_metadata_facts.py"
# Our collection, built from this tree and installed from its tarball.
OURS_STAGE = CACHE / "ours-stage" / "ansible_collections" / "imds" / "ec2"
OURS_DIST = CACHE / "ours-dist"
OURS_COLLECTIONS = CACHE / "ours-collections"
SETUP_RECORD = CACHE / "setup.json"
# Scratch space of one bench run (minion dirs, ansible home, patched peer copy).
SCRATCH = CACHE / "scratch"

# The interpreter of the project's .venv (the one `make bench` runs).
PYTHON = Path(sys.executable)
BIN = PYTHON.parent
