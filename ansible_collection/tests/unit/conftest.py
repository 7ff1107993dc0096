# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The IMDS simulator of ec2-metadata-core, for every unit test of the collection."""

from __future__ import annotations

import pytest

try:
    from ec2_metadata_core.simulator import Simulator
except ImportError:  # a clear failure, not a skip: these tests need the simulator
    Simulator = None


@pytest.fixture
def simulator():
    if Simulator is None:
        pytest.fail("these tests need the IMDS simulator: pip install ec2-metadata-core")
    sim = Simulator().start()
    yield sim
    sim.stop()
