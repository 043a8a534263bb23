# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process and catch what exit_json/fail_json return (unit tests only)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

import pytest
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cloudops.leveller.plugins.module_utils import _lock as lock_mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import FakeNova


class Exit(SystemExit):  # exit_json/fail_json end the module with SystemExit
    def __init__(self, result, failed):
        super(Exit, self).__init__(result)
        self.result, self.failed = result, failed


def module_runner(monkeypatch, mod, defaults=None):
    """A function that runs ``mod.main()`` with the given args (over ``defaults``), returning the Exit."""
    def exit_json(self, **kw):
        raise Exit(kw, False)

    def fail_json(self, **kw):
        raise Exit(kw, True)

    monkeypatch.setattr(AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(AnsibleModule, 'fail_json', fail_json)

    def run(args):
        with patch_module_args(dict(defaults or {}, **args)):
            with pytest.raises(Exit) as exc:
                mod.main()
        return exc.value
    return run


def moving_module_runner(monkeypatch, tmp_path, mod, **defaults):
    """module_runner for a module that moves instances: a FakeNova, a lock dir under tmp_path, fast polling."""
    nova = FakeNova(time.monotonic, duration=0.05)
    monkeypatch.setattr(mod, 'connect', lambda module: object())
    monkeypatch.setattr(mod, 'Nova', lambda conn: nova)
    monkeypatch.setattr(lock_mod, 'cloud_key_for', lambda conn: 'unit')
    journal_dir = str(tmp_path / 'journal')
    run = module_runner(monkeypatch, mod, dict(defaults, poll_interval=0.01, lock_dir=str(tmp_path),
                                               journal_dir=journal_dir))
    run.nova = nova
    run.lock_dir = str(tmp_path)
    run.journal_dir = journal_dir
    return run


class _Journal(object):
    """Stands in for systemd.journal: keeps what the module logs (message and fields)."""

    def __init__(self):
        self.sent = []

    def send(self, **fields):
        self.sent.append(fields)


def module_output(monkeypatch, capsys, mod, defaults=None):
    """A function running ``mod.main()`` through the real exit_json/fail_json, as Ansible does.

    It returns (the text the module printed, that text parsed, what it sent to the journal as
    one string), so a test sees exactly what reaches the controller and the target's log.
    """
    journal = _Journal()
    monkeypatch.setattr(basic, 'has_journal', True)
    monkeypatch.setattr(basic, 'journal', journal, raising=False)

    def run(args):
        del journal.sent[:]
        capsys.readouterr()
        with patch_module_args(dict(defaults or {}, **args)):
            with pytest.raises(SystemExit):
                mod.main()
        text = capsys.readouterr().out
        return text, json.loads(text.strip().splitlines()[-1]), json.dumps(journal.sent, default=str)
    return run
