# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake of the small Nova interface the executor uses, driven by a fake clock.

Only for unit tests of the executor's state machine (waves, limits, waits, accounting);
the integration tests run the same code against the real local cloud.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.cloudops.leveller.plugins.module_utils._nova import NovaError


def nova_time(epoch):
    """Nova's updated_at text for an epoch second (UTC, microseconds, no zone)."""
    return time.strftime('%Y-%m-%dT%H:%M:%S.000000', time.gmtime(epoch))


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeNova(object):
    """Instances move after ``duration`` seconds of fake time, or fail / hang as told.

    behaviour per instance: ok | fail | hang | refuse | refuse-error | abort-refused |
    wrong-host | vanish | no-record | lost-reply (begins, then the answer is lost) |
    refuse-502 (a 502 and nothing begins) | error-mid (ERROR half way) |
    abort-refused-once | power-lost (arrives shut down) | stuck (hangs, every abort refused)
    """

    def __init__(self, clock, hosts=('c1', 'c2', 'c3', 'c4'), duration=3.0, free=None):
        self.clock = clock
        self.duration = duration
        self.services = dict((h, {'id': 'svc-' + h, 'host': h, 'status': 'enabled', 'state': 'up',
                                  'forced_down': False, 'disabled_reason': None,
                                  'updated_at': nova_time(time.time())}) for h in hosts)
        self.free = dict((h, {'VCPU': 100, 'MEMORY_MB': 100000, 'DISK_GB': 1000}) for h in hosts)
        if free:
            for h, room in free.items():
                self.free[h].update(room)
        self.servers = {}
        self.behaviour = {}
        self.migs = {}  # instance -> list of migration dicts
        self.active = {}  # instance -> in-flight record
        self.calls = []
        self.metadata_refused = set()  # instances whose metadata Nova's policy keeps
        self.peak = 0
        self.peak_per_host = {}
        self._next_id = 1

    # -- set-up ---------------------------------------------------------------
    def add(self, uid, host, status='ACTIVE', behaviour='ok', ram=512, name=None):
        self.servers[uid] = {'id': uid, 'name': name or 'vm-' + uid, 'status': status, 'task_state': None,
                             'host': host, 'flavor': {'vcpus': 1, 'memory_mb': ram, 'disk_gb': 1},
                             'power_state': 1 if status == 'ACTIVE' else 4}
        self.behaviour[uid] = behaviour
        self.migs[uid] = [{'id': self._new_id(), 'status': 'completed', 'type': 'live-migration',
                           'source': 'old', 'destination': host}]

    def _new_id(self):
        self._next_id += 1
        return self._next_id

    # -- the interface ------------------------------------------------------------
    def _advance(self):
        now = self.clock()
        for uid, rec in list(self.active.items()):
            srv = self.servers.get(uid)
            mig = rec['mig']
            b = self.behaviour.get(uid, 'ok')
            if rec.get('aborted'):
                if now >= rec['aborted'] + 1:
                    mig['status'] = 'cancelled'
                    srv['task_state'] = None
                    del self.active[uid]
                continue
            if b == 'error-mid' and now >= rec['t0'] + self.duration / 2.0:
                srv['status'] = 'ERROR'
                srv['task_state'] = None
                mig['status'] = 'error'
                del self.active[uid]
                continue
            if now < rec['t0'] + self.duration:
                continue
            if b in ('hang', 'abort-refused-once', 'stuck'):
                continue
            kind = rec['kind']
            if b == 'fail':
                mig['status'] = 'failed' if kind != 'evacuate' else 'error'
                srv['task_state'] = None
            elif kind == 'live':
                mig['status'] = 'completed'
                srv['task_state'] = None
                srv['host'] = 'c9' if b == 'wrong-host' else rec['dest']
                if b == 'power-lost':
                    srv['power_state'] = 4
            elif kind == 'cold':
                if srv['status'] != 'VERIFY_RESIZE' and not rec.get('confirmed'):
                    srv['status'] = 'VERIFY_RESIZE'
                    srv['task_state'] = None
                    srv['host'] = rec['dest']
                    mig['status'] = 'finished'
                    continue
                if rec.get('confirmed'):
                    srv['status'] = 'SHUTOFF'
                    srv['task_state'] = None
                    mig['status'] = 'confirmed'
                else:
                    continue
            elif kind == 'evacuate':
                mig['status'] = 'done'
                srv['task_state'] = None
                srv['host'] = rec['dest']
                if rec['mv95']:
                    srv['status'] = 'SHUTOFF'
            elif kind == 'start':
                srv['status'] = 'ACTIVE'
                srv['task_state'] = None
            del self.active[uid]

    def get_server(self, uid):
        self._advance()
        if self.behaviour.get(uid) == 'vanish' and uid in self.active:
            self.servers.pop(uid, None)
            del self.active[uid]  # a deleted instance's migration ends with it
        srv = self.servers.get(uid)
        return None if srv is None else dict(srv, flavor=dict(srv['flavor']))

    def compute_services(self):
        return dict((h, dict(s)) for h, s in self.services.items())

    def migrations(self, uid, migration_type=None):
        self._advance()
        if self.behaviour.get(uid) == 'no-record':
            return []
        items = [dict(m) for m in self.migs.get(uid, [])
                 if migration_type is None or m['type'] == migration_type]
        return list(reversed(items))

    def instance_resources(self, uid):
        f = self.servers[uid]['flavor']
        return {'VCPU': f['vcpus'], 'MEMORY_MB': f['memory_mb'], 'DISK_GB': f['disk_gb']}

    def host_room(self, host):
        return dict((rc, {'free': v, 'max_unit': None}) for rc, v in self.free[host].items())

    def _pick(self, src):
        for h in sorted(self.services):
            if h != src and self.services[h]['status'] == 'enabled':
                return h
        raise NovaError('No valid host was found', status=400)

    def _begin(self, uid, dest, kind, mig_type):
        srv = self.servers[uid]
        self.calls.append((kind, uid, dest))
        b = self.behaviour.get(uid)
        if b == 'refuse':
            raise NovaError('POST returned HTTP 400: No valid host was found.', status=400)
        if b == 'refuse-error':
            srv['status'] = 'ERROR'
            raise NovaError('POST returned HTTP 500: MigrationError', status=500)
        if b == 'refuse-502':
            raise NovaError('POST returned HTTP 502: Bad Gateway', status=502)
        dest = dest or self._pick(srv['host'])
        mig = {'id': self._new_id(), 'status': 'running', 'type': mig_type, 'source': srv['host'],
               'destination': dest}
        self.migs[uid].append(mig)
        srv['task_state'] = {'live': 'migrating', 'cold': 'resize_migrating', 'evacuate': 'rebuilding'}[kind]
        self.active[uid] = {'t0': self.clock(), 'dest': dest, 'mig': mig, 'kind': kind,
                            'mv95': getattr(self, 'mv95', True)}
        self.peak = max(self.peak, len(self.active))
        for h in (mig['source'], dest):
            n = sum(1 for r in self.active.values() if h in (r['mig']['source'], r['dest']))
            self.peak_per_host[h] = max(self.peak_per_host.get(h, 0), n)
        if b == 'lost-reply':
            raise NovaError('POST timed out: read timeout=60', status=None)

    def live_migrate(self, uid, host=None):
        self._begin(uid, host, 'live', 'live-migration')

    def cold_migrate(self, uid, host=None):
        self._begin(uid, host, 'cold', 'migration')

    def confirm_resize(self, uid):
        self.calls.append(('confirm', uid, None))
        self.active[uid]['confirmed'] = True

    def evacuate(self, uid, host=None):
        self._begin(uid, host, 'evacuate', 'evacuation')

    def start(self, uid):
        self.calls.append(('start', uid, None))
        self.active[uid] = {'t0': self.clock() - self.duration + 1, 'dest': None,
                            'mig': {'status': 'n/a', 'source': None}, 'kind': 'start', 'mv95': True}

    def abort_migration(self, uid, mid):
        self.calls.append(('abort', uid, mid))
        if self.behaviour.get(uid) in ('abort-refused', 'stuck'):
            raise NovaError('DELETE returned HTTP 400: migration is not in running state', status=400)
        if self.behaviour.get(uid) == 'abort-refused-once':
            self.behaviour[uid] = 'hang'
            raise NovaError('DELETE returned HTTP 400: migration is preparing', status=400)
        self.active[uid]['aborted'] = self.clock()

    # -- used by the modules ----------------------------------------------------------
    def servers_on_host(self, host):
        return [self.get_server(uid) for uid in sorted(self.servers) if self.servers[uid]['host'] == host]

    def find_servers(self, name):
        return [self.get_server(uid) for uid in sorted(self.servers) if self.servers[uid]['name'] == name]

    def set_service_status(self, service_id, enabled, reason=None):
        self.calls.append(('service', service_id, enabled))
        for svc in self.services.values():
            if svc['id'] == service_id:
                svc['status'] = 'enabled' if enabled else 'disabled'
                svc['disabled_reason'] = None if enabled else reason

    def set_forced_down(self, service_id, forced_down):
        self.calls.append(('forced_down', service_id, forced_down))
        for svc in self.services.values():
            if svc['id'] == service_id:
                svc['forced_down'] = forced_down

    def evacuate_microversion(self):
        return '2.95'

    def silent(self, host, seconds):
        """The host's nova-compute last reported ``seconds`` ago (wall clock): Nova reads it down."""
        self.services[host].update(state='down', updated_at=nova_time(time.time() - seconds))

    def evacuations_from(self, host):
        return [dict(id=m['id'], uuid='mig-%s' % m['id'], instance=uid, status=m['status'], source=m['source'],
                     destination=m.get('destination'), created_at=None, updated_at=m.get('updated_at'))
                for uid, migs in sorted(self.migs.items()) for m in migs
                if m.get('type') == 'evacuation' and m.get('source') == host]

    def set_server_metadata(self, uid, metadata):
        self.calls.append(('metadata', uid, dict(metadata)))
        self.servers[uid].setdefault('metadata', {}).update(metadata)

    def delete_server_metadata_item(self, uid, key):
        self.calls.append(('delete-metadata', uid, key))
        if uid in self.metadata_refused:
            raise NovaError('DELETE /servers/%s/metadata/%s returned HTTP 403: Policy does not allow it' % (uid, key),
                            status=403)
        self.servers[uid].get('metadata', {}).pop(key, None)
