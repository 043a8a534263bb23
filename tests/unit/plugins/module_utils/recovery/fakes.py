# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes of a cloud clock, a BMC and the few Nova calls of the recovery logic.

Only for unit tests of the recovery decisions (_recovery.py): the fault suite runs the same
code against the local cloud and real BMC endpoints. The fakes keep the facts the decisions
rest on: nova-compute reports every 10 s while it runs (and a power off through the BMC
stops it); every change through the services API also moves ``updated_at``, as Nova's
database does; Nova reads a service down when it is forced down or silent for 60 s.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import time

from ansible_collections.cloudops.leveller.plugins.module_utils._fence import Fence, FenceError
from ansible_collections.cloudops.leveller.plugins.module_utils._nova import NovaError

SECRET = 'pw-SECRET-123'
START = 1800000000.0  # 2027-01-15T08:00:00Z
REPORT_INTERVAL = 10


def nova_time(seconds):
    """Nova's way of writing a time: UTC, microseconds, no zone."""
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)) + '.%06d' % int(round((seconds % 1) * 1e6))


class FakeClock(object):
    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeNova(object):
    """Compute services, evacuation records and servers; ``log`` is shared with the BMCs."""

    def __init__(self, clock, hosts=('c1', 'c2', 'c3', 'c4'), log=None, service_down_time=60):
        self.clock = clock
        self.log = log if log is not None else []
        self.service_down_time = service_down_time
        self.alive = dict((h, True) for h in hosts)
        self.last_report = dict((h, clock() - 3) for h in hosts)
        self.last_write = dict((h, None) for h in hosts)
        self.services = dict((h, {'id': 'svc-' + h, 'host': h, 'status': 'enabled', 'forced_down': False,
                                  'disabled_reason': None, 'zone': 'nova'}) for h in hosts)
        self.records = dict((h, []) for h in hosts)
        self.servers = {}
        self.fail = {}  # method name -> NovaError to raise (once per entry in a list)

    # -- set-up ---------------------------------------------------------------
    def kill(self, host, seconds_ago):
        """nova-compute on ``host`` stopped reporting ``seconds_ago``."""
        self.alive[host] = False
        self.last_report[host] = self.clock() - seconds_ago

    def start(self, host):
        """nova-compute starts on ``host``: it cleans up evacuated guests, then reports."""
        now = self.clock()
        for rec in self.records[host]:
            if rec['status'] in ('accepted', 'pre-migrating', 'done'):
                rec['status'] = 'completed'
                rec['updated_at'] = nova_time(now)
        self.alive[host] = True
        self.last_report[host] = now + 1

    def reconnect(self, host):
        """A nova-compute that was only cut off reports again: it cleans up nothing."""
        self.alive[host] = True
        self.last_report[host] = self.clock()

    def add_record(self, host, instance, status='done', at=None):
        at = self.clock() if at is None else at
        self.records[host].append({'id': len(self.records[host]) + 1, 'uuid': 'mig-' + instance,
                                   'instance': instance, 'status': status, 'source': host, 'destination': 'c2',
                                   'created_at': nova_time(at - 30), 'updated_at': nova_time(at)})
        self.servers.setdefault(instance, {'id': instance, 'name': 'vm-' + instance, 'host': 'c2',
                                           'status': 'ACTIVE', 'metadata': {}})

    def _maybe_fail(self, name):
        errors = self.fail.get(name)
        if errors:
            raise errors.pop(0)

    # -- the interface ------------------------------------------------------------
    def _updated_at(self, host):
        now = self.clock()
        if self.alive[host]:
            # reports every REPORT_INTERVAL seconds
            self.last_report[host] = max(self.last_report[host], now - (now % REPORT_INTERVAL))
        times = [t for t in (self.last_report[host], self.last_write[host]) if t is not None]
        return max(times)

    def compute_services(self):
        self.log.append(('nova', 'compute_services'))
        self._maybe_fail('compute_services')
        now = self.clock()
        out = {}
        for host, svc in self.services.items():
            view = copy.deepcopy(svc)
            view['updated_at'] = nova_time(self._updated_at(host))
            silent = now - self.last_report[host] > self.service_down_time
            view['state'] = 'down' if svc['forced_down'] or silent else 'up'
            out[host] = view
        return out

    def _host_of(self, service_id):
        for host, svc in self.services.items():
            if svc['id'] == service_id:
                return host
        raise NovaError('PUT /os-services/%s returned HTTP 404: service not found' % service_id, status=404)

    def set_forced_down(self, service_id, forced_down):
        host = self._host_of(service_id)
        self.log.append(('nova', 'set_forced_down', host, forced_down))
        self._maybe_fail('set_forced_down')
        self.services[host]['forced_down'] = bool(forced_down)
        self.last_write[host] = self.clock()

    def set_service_status(self, service_id, enabled, reason=None):
        host = self._host_of(service_id)
        self.log.append(('nova', 'set_service_status', host, enabled))
        self._maybe_fail('set_service_status')
        self.services[host]['status'] = 'enabled' if enabled else 'disabled'
        self.services[host]['disabled_reason'] = None if enabled else reason
        self.last_write[host] = self.clock()

    def evacuations_from(self, host):
        self.log.append(('nova', 'evacuations_from', host))
        self._maybe_fail('evacuations_from')
        return copy.deepcopy(self.records.get(host, []))

    def get_server(self, server_id):
        self._maybe_fail('get_server')
        server = self.servers.get(server_id)
        return copy.deepcopy(server) if server is not None else None

    def writes(self):
        return [e for e in self.log if e[0] == 'nova' and e[1].startswith('set_')]


class FakeBMC(Fence):
    """A BMC on the fake clock. ``off_delay``: seconds from the order until it reads off.

    behaviour: ok | unreachable | ignore-off (takes the order, stays on) | refuse-off (answers
    an error, stays on) | refuse-but-off (answers an error, powers off all the same) |
    flaky (one failed read after the order)
    """

    driver = 'fake'

    def __init__(self, clock, nova=None, host='c1', state='on', off_delay=4.0, behaviour='ok', log=None,
                 fence_timeout=30):
        super(FakeBMC, self).__init__('bmc-' + host, 'admin', SECRET, fence_timeout=fence_timeout)
        self.clock = clock
        self.nova = nova
        self.host = host
        self.state = state
        self.off_delay = off_delay
        self.behaviour = behaviour
        self.log = log if log is not None else (nova.log if nova is not None else [])
        self._off_at = None
        self._flaked = False

    def describe(self):
        return 'fake BMC %s (user %s)' % (self.address, self.username)

    def _tick(self):
        if self._off_at is not None and self.clock() >= self._off_at:
            self.state = 'off'
            self._off_at = None
            if self.nova is not None and self.nova.alive.get(self.host):
                self.nova.kill(self.host, 0)

    def power_state(self):
        self.log.append(('bmc', 'read'))
        if self.behaviour == 'unreachable':
            # the library's own text carries the login: the driver must scrub it
            raise self._error('read the power state', IOError('timed out talking to admin:%s@%s' % (SECRET, self.address)))
        if self.behaviour == 'flaky' and self._off_at is not None and not self._flaked:
            self._flaked = True
            raise self._error('read the power state', IOError('connection reset'))
        self._tick()
        return self.state

    def power_off(self):
        self.log.append(('bmc', 'off'))
        if self.behaviour == 'unreachable':
            raise self._error('power off', IOError('timed out'))
        if self.behaviour in ('refuse-off', 'refuse-but-off'):
            if self.behaviour == 'refuse-but-off':
                self.state = 'off'
                if self.nova is not None and self.nova.alive.get(self.host):
                    self.nova.kill(self.host, 0)
            raise FenceError('%s: cannot power off: HTTP 409 Conflict' % self.describe())
        if self.behaviour == 'ignore-off':
            return
        if self.state != 'off':
            self._off_at = self.clock() + self.off_delay

    def power_on(self):
        """Someone powers the host on again: nova-compute starts with it."""
        self.state = 'on'
        if self.nova is not None:
            self.nova.start(self.host)
