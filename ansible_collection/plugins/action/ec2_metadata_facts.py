# Copyright: ec2-metadata-core contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt
# or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the module, and censors its result when it holds credentials or user data.

A module cannot mark its own result ``no_log`` (Ansible strips internal keys
from module returns); its action can, so a task that asks for secrets shows
them neither in the output nor in logs, while the facts are still set.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.imds.ec2.plugins.module_utils.ansible_face import FACT
from ansible_collections.imds.ec2.plugins.module_utils.sensitive import holds_sensitive

# The host already has flat facts this task will not refresh: from a fact
# cache, or amazon.aws.ec2_metadata_facts (or legacy_facts=true) earlier on.
STALE = (
    "this host has {} flat ansible_ec2_* facts (e.g. {}) from an earlier gather or a fact "
    "cache, which this task does not refresh without legacy_facts=true: set it, or read "
    "ansible_facts.ec2 instead (the project's docs/migrate-amazon-aws.md)"
)


def stale_flat_facts(task_vars):
    """Names of flat ``ansible_ec2_*`` facts the host has before this task runs."""
    facts = task_vars.get("ansible_facts") or {}
    names = {name for name in task_vars if name.startswith("ansible_ec2_")}
    names.update("ansible_" + name for name in facts if name.startswith("ec2_"))
    return sorted(names)


def holds_secrets(result):
    """Whether a module result carries credentials or user data."""
    return holds_sensitive(result.get("ansible_facts", {}).get(FACT) or {})


class ActionModule(ActionBase):
    _supports_check_mode = True
    # An async job's result would reach async_status uncensored.
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.x
        result = merge_hash(result, self._execute_module(task_vars=task_vars))
        if not boolean(self._task.args.get("legacy_facts", False), strict=False):
            stale = stale_flat_facts(task_vars or {})
            if stale and not result.get("failed"):
                result.setdefault("warnings", []).append(STALE.format(len(stale), stale[0]))
        if holds_secrets(result):
            result["_ansible_no_log"] = True
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
