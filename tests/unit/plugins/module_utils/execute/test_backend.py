# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state machine runs over any backend that meets the _backend.Backend interface."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._backend import (
    Backend, NovaBackend, backend_for)
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import Executor, Move
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import (
    FakeClock, FakeNova)


class SecondBackend(Backend):
    """A backend that is not Nova-shaped: its own names, its own kinds of calls (recorded)."""

    name = 'second'

    def __init__(self, platform):
        self.p = platform
        self.ops = []

    def read(self, instance):
        return self.p.get_server(instance)

    def hosts(self):
        return self.p.compute_services()

    def needs(self, instance):
        return {'VCPU': 1, 'MEMORY_MB': 512}

    def room(self, host):
        return dict((rc, {'free': free, 'max_unit': None}) for rc, free in self.p.free[host].items())

    def migrations(self, instance, kind):
        return self.p.migrations(instance)

    def start(self, kind, instance, destination):
        self.ops.append(('start', kind, instance, destination))
        return {'live': self.p.live_migrate, 'cold': self.p.cold_migrate, 'evacuate': self.p.evacuate}[kind](
            instance, destination)

    def abort(self, instance, migration_id):
        self.ops.append(('abort', instance, migration_id))
        return self.p.abort_migration(instance, migration_id)

    def confirm(self, instance):
        return self.p.confirm_resize(instance)

    def power_on(self, instance):
        self.ops.append(('power_on', instance))
        return self.p.start(instance)


def test_a_second_backend_drives_live_moves_aborts_and_evacuations():
    clock = FakeClock()
    platform = FakeNova(clock)
    platform.add('a', 'c1')
    platform.add('h', 'c2', behaviour='hang')
    platform.add('e', 'c3')
    platform.services['c3'].update(state='down', forced_down=True)
    backend = SecondBackend(platform)
    ex = Executor(backend, clock=clock, sleep=clock.sleep, poll_interval=1.0, timeout=20, abort_timeout=10,
                  on_failure='continue')
    assert ex.backend is backend
    moves = ex.run([Move('a', 'c1', 'c4'), Move('h', 'c2', 'c4', wave=2), Move('e', 'c3', None, kind='evacuate', wave=3)])
    assert [m.result for m in moves] == ['moved', 'aborted', 'evacuated']
    assert [op[0] for op in backend.ops] == ['start', 'start', 'abort', 'start', 'power_on']
    assert platform.servers['e']['status'] == 'ACTIVE' and platform.servers['e']['host'] != 'c3'


def test_a_nova_object_is_wrapped_in_the_nova_backend():
    clock = FakeClock()
    nova = FakeNova(clock)
    assert isinstance(backend_for(nova), NovaBackend) and backend_for(nova).nova is nova
    with pytest.raises(ValueError, match='unknown move kind'):
        NovaBackend(nova).start('teleport', 'a', None)
    with pytest.raises(NotImplementedError):
        Backend().read('a')
