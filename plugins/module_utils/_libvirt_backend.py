# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt backend of the move state machine: live migration between plain KVM hosts.

``LibvirtBackend({host: uri})`` meets ``_backend.Backend`` for hosts that have no Nova. An
instance is a libvirt domain named by its UUID, the id ``_sources.libvirt`` gives instances in
snapshots. Only live moves exist: libvirt's peer-to-peer live migration (the source's libvirtd
drives it and connects to the destination itself), persistent on the destination and
undefined on the source. There is no scheduler, no cold migration and no evacuation.

What the executor sees of one live move (``read`` / ``migrations``):

============================  ==========================================  ===========================
phase                         ``read()``                                  ``migrations(uuid, 'live')``
============================  ==========================================  ===========================
before the start              ACTIVE on the source, task_state None       the earlier records only
start accepted, copying       ACTIVE on the source, task_state migrating  a new id, ``running``
switch-over (ms to seconds)   ACTIVE, host where it runs, migrating       ``running``
migrated                      ACTIVE on the destination, task_state None  ``completed``
libvirt reported a failure    ACTIVE on the source, task_state None       ``failed``, libvirt's message
aborted (``abortJob``)        ACTIVE on the source, task_state None       ``cancelled``
============================  ==========================================  ===========================

``task_state`` is ``migrating`` for as long as the migration call this backend made has not
returned, and whenever libvirt shows a migration job on any copy (a move begun by an earlier,
killed run), so a record never reads as ended while the hosts are still moving the domain.
A domain running on two hosts outside a migration is ``ERROR`` with a note: the executor's
post-check fails it.

Every call is bounded. Each host has one read-write connection with a keepalive (libvirt's
default event loop runs on a daemon thread, which keepalive needs); every call on it is made
on a worker thread and waited for at most ``call_timeout`` seconds, the hosts of one read in
parallel, so a host that hangs costs a poll round ``call_timeout`` at most and is reported as
not answering (its connection is replaced). The migration call itself blocks until libvirt
ends the migration, so it runs on its own thread and its own connection to the source.

A migration whose call was cut off (the connection to the source lost) is not called failed:
its record stays ``running`` until the hosts show where the domain runs with no migration job,
so no host slot is freed while libvirt may still be migrating.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import atexit
import itertools
import threading
import time
import uuid as uuid_mod
import weakref

from ansible_collections.cloudops.leveller.plugins.module_utils._backend import Backend
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.libvirt import (
    DOMAIN_STATES, HAS_LIBVIRT, MAINTENANCE_PREFIX, MAINTENANCE_USAGE, MOVE_NS, MOVE_PREFIX, check_uri, libvirt,
    maintenance_mark, move_xml, node_held)

# virDomainState -> Nova's power state numbers, as Nova's own libvirt driver maps them.
POWER_STATE = {0: 0, 1: 1, 2: 1, 3: 3, 4: 4, 5: 4, 6: 6, 7: 7}
_RUNNING = (1, 2)                 # running, blocked (running, waiting on a resource)
_MIGRATABLE = (1, 2, 3)           # running, blocked, paused
_PAUSED = 3
_PAUSED_INCOMING = (2, 11)        # paused for a migration, starting up: an incoming copy
_JOB_ACTIVE = (1, 2)              # bounded, unbounded
_JOB_MIGRATION = (4, 5)           # migration in, migration out
_JOB_TASKS = {1: 'starting', 2: 'saving', 3: 'restoring', 6: 'snapshotting', 7: 'reverting-snapshot',
              8: 'dumping', 9: 'backing-up', 10: 'deleting-snapshot'}
_ERR_NO_DOMAIN = 42
_ERR_OPERATION_INVALID = 55
_ERR_OPERATION_ABORTED = 78
DEFAULT_CALL_TIMEOUT = 10.0
DEFAULT_KEEPALIVE = (5, 3)        # a probe after 5 s idle; the connection is dead after 3 unanswered
NO_COLD = ('plain libvirt has no cold migration and no evacuation (no Nova, no shared '
           'instance records): only live moves to a named destination are carried out')

_LOOP_LOCK = threading.Lock()
_LOOP = {'started': False}


class LibvirtBackendError(Exception):
    """A failed call. ``status`` below 500 is a refusal (nothing was started); None is an unclear
    answer (a host that did not answer in time, a lost connection) that the executor reads back."""

    def __init__(self, message, status=None):
        super(LibvirtBackendError, self).__init__(message)
        self.status = status


def _refused(message):
    return LibvirtBackendError(message, status=400)


def _text(exc):
    if libvirt is not None and isinstance(exc, libvirt.libvirtError):
        return redact_url(exc.get_error_message() or str(exc))
    return redact_url(str(exc))


def _code(exc):
    if libvirt is not None and isinstance(exc, libvirt.libvirtError):
        return exc.get_error_code()
    return None


def _silence(ctx, err):
    """libvirt prints every error on stderr as well; they are raised and reported instead."""


def start_event_loop():
    """Run libvirt's default event loop on a daemon thread, once per process: keepalive needs it."""
    with _LOOP_LOCK:
        if _LOOP['started']:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop():
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # never let the loop die: keepalive stops with it
                    time.sleep(0.1)

        thread = threading.Thread(target=loop, name='leveller-libvirt-events')
        thread.daemon = True
        thread.start()
        _LOOP['started'] = True


class _Call(object):
    """One function on its own daemon thread; the caller waits as long as it chooses and no longer."""

    def __init__(self, target, name):
        self.value = None
        self.error = None
        self.done = threading.Event()
        thread = threading.Thread(target=self._run, args=(target,), name=name)
        thread.daemon = True  # a call that never returns must not keep the process alive
        thread.start()

    def _run(self, target):
        try:
            self.value = target()
        except Exception as exc:  # handed to the caller
            self.error = exc
        finally:
            self.done.set()


class _Link(object):
    """The connection to one host's libvirt, opened on first use and replaced when it breaks."""

    def __init__(self, name, uri):
        self.name = name
        self.uri = uri
        self.conn = None
        self.opening_since = None
        self.lock = threading.Lock()


class _Migration(object):
    """One migration this backend started: its record, and what its thread needs."""

    def __init__(self, mid, instance, name, source, destination, bandwidth):
        self.id = mid
        self.instance = instance
        self.name = name
        self.source = source
        self.destination = destination
        self.bandwidth = bandwidth
        self.status = 'running'
        self.phase = 'preparing'     # preparing -> migrating (the libvirt call is made) -> ended
        self.abort_requested = False
        self.message = None
        self.lost = None             # the call was cut off: the hosts decide how it ended
        self.progress = None
        self.started = time.monotonic()
        self.started_at = _now()
        self.ended_at = None
        self.seconds = None

    def view(self):
        return {'id': self.id, 'instance': self.instance, 'name': self.name, 'kind': 'live',
                'migration_type': 'live-migration', 'status': self.status, 'source': self.source,
                'destination': self.destination, 'bandwidth_mib_s': self.bandwidth,
                'started_at': self.started_at, 'ended_at': self.ended_at,
                'seconds': None if self.seconds is None else round(self.seconds, 2),
                'abort_requested': self.abort_requested, 'message': self.message,
                'progress': None if self.progress is None else dict(self.progress)}


def _now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _incoming(copy):
    """The half-built copy a migration makes on its destination (transient, paused)."""
    if copy['job_operation'] == 4:
        return True
    return (copy['active'] and not copy['persistent'] and copy['state'] == _PAUSED
            and copy['reason'] in _PAUSED_INCOMING)


def _job_running(copy):
    return copy['job_type'] in _JOB_ACTIVE


def _describe(copy):
    state = DOMAIN_STATES.get(copy['state'], ('unknown',))[0]
    if _incoming(copy):
        return 'incoming migration (%s, transient)' % state
    text = state if copy['active'] else 'defined, %s' % state
    if not copy['persistent']:
        text += ', transient'
    if _job_running(copy):
        text += ', job %s' % ('migration' if copy['job_operation'] in _JOB_MIGRATION
                              else _JOB_TASKS.get(copy['job_operation'], 'running'))
    return text


def _rank(host, copy):
    """Which copy is the instance: the running one, then a live one (persistent first), then an
    incoming copy, then a mere definition."""
    if copy['active'] and not _incoming(copy):
        order = 0 if copy['state'] in _RUNNING else 1 if copy['persistent'] else 2
    elif copy['active']:
        order = 3
    else:
        order = 4
    return (order, host)


def _is_alive(conn):
    """Whether a libvirt connection still answers its keepalive (a failed check counts as dead)."""
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


class LibvirtBackend(Backend):
    """The libvirt backend over ``uris`` ({host name: libvirt URI}, as ``libvirt_uris``).

    ``allocation_ratio`` ({vcpus, memory_mb}, 1.0 each unless given, as ``hypervisor_load_info``'s
    ``libvirt_allocation_ratio``) sizes each host's room; ``bandwidth`` (MiB/s) caps every
    migration; ``call_timeout`` bounds every call the poll loop waits for; ``keepalive``
    (interval s, count) detects dead connections; ``peer_uris`` ({host: URI}) are the URIs the
    source's libvirtd uses to reach a destination, when they differ from the controller's.
    """

    name = 'libvirt'
    label = 'libvirt'
    host_word = 'libvirt host (libvirt_uris)'
    disabled_word = 'in maintenance'

    def __init__(self, uris, allocation_ratio=None, bandwidth=None, call_timeout=DEFAULT_CALL_TIMEOUT,
                 keepalive=DEFAULT_KEEPALIVE, peer_uris=None, storage='shared'):
        if not HAS_LIBVIRT:
            raise LevellerError('the libvirt backend needs libvirt-python on the host that runs the module '
                                '(pip install libvirt-python, or the distribution\'s python3-libvirt)',
                                FailureClass.CONFIGURATION)
        if not isinstance(uris, dict) or not uris:
            raise LevellerError('libvirt_uris: expected a mapping of host name to libvirt URI, got %r' % (uris,),
                                FailureClass.CONFIGURATION)
        for name, uri in sorted(uris.items()):
            check_uri(name, uri)
        peer_uris = dict(peer_uris or {})
        unknown = sorted(set(peer_uris) - set(uris))
        if unknown:
            raise LevellerError('libvirt peer URIs name host(s) %s that libvirt_uris does not have (hosts: %s)'
                                % (', '.join(unknown), ', '.join(sorted(uris))), FailureClass.CONFIGURATION)
        for name, uri in sorted(peer_uris.items()):
            check_uri(name, uri)
        self.ratio = {}
        for key in ('vcpus', 'memory_mb'):
            value = (allocation_ratio or {}).get(key)
            value = 1.0 if value is None else float(value)
            if value <= 0:
                raise LevellerError('libvirt allocation_ratio.%s must be > 0 (got %s)' % (key, value),
                                    FailureClass.CONFIGURATION)
            self.ratio[key] = value
        if bandwidth is not None and (int(bandwidth) != bandwidth or bandwidth < 1):
            raise LevellerError('libvirt migration bandwidth must be a whole number of MiB/s, at least 1 '
                                '(got %r); leave it unset for no cap' % (bandwidth,), FailureClass.CONFIGURATION)
        if storage not in ('shared', 'copy'):
            raise LevellerError('storage must be shared or copy (got %r)' % (storage,), FailureClass.CONFIGURATION)
        self.storage = storage
        if call_timeout <= 0:
            raise LevellerError('libvirt call_timeout must be positive (got %r)' % (call_timeout,),
                                FailureClass.CONFIGURATION)
        self.uris = dict(uris)
        self.peer_uris = dict((name, peer_uris.get(name, uri)) for name, uri in uris.items())
        self.bandwidth = None if bandwidth is None else int(bandwidth)
        self.call_timeout = float(call_timeout)
        self.keepalive = tuple(keepalive) if keepalive else None
        self.links = dict((name, _Link(name, uri)) for name, uri in uris.items())
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._migrations = []
        libvirt.registerErrorHandler(_silence, None)
        if self.keepalive:
            start_event_loop()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- connections and bounded calls ---------------------------------------------
    def _open(self, uri):
        """A new read-write connection with keepalive (drivers without keepalive, as test:///, skip it)."""
        conn = libvirt.open(uri)
        if conn is None:  # pragma: no cover (old bindings return None instead of raising)
            raise LibvirtBackendError('libvirt at %s did not open' % redact_url(uri))
        if self.keepalive:
            try:
                conn.setKeepAlive(self.keepalive[0], self.keepalive[1])
            except libvirt.libvirtError:
                pass
        return conn

    def _connect(self, name):
        link = self.links[name]
        with link.lock:
            conn = link.conn
            if conn is not None:
                if _is_alive(conn):
                    return conn
                link.conn = None
                _close_later(conn)
            if link.opening_since is not None:
                # One open at a time per host: a host that hangs gets no pile of threads.
                raise LibvirtBackendError('still connecting to libvirt of host %s at %s (for %.0f s)'
                                          % (name, redact_url(link.uri), time.monotonic() - link.opening_since))
            link.opening_since = time.monotonic()
        try:
            conn = self._open(link.uri)
        except libvirt.libvirtError as exc:
            raise LibvirtBackendError('libvirt of host %s at %s: %s' % (name, redact_url(link.uri), _text(exc)))
        finally:
            with link.lock:
                link.opening_since = None
        with link.lock:
            if link.conn is None:
                link.conn = conn
                return conn
            kept = link.conn
        _close_later(conn)
        return kept

    def _drop(self, name):
        """Replace the connection of a host that did not answer in time: the next call opens another."""
        link = self.links[name]
        with link.lock:
            conn, link.conn = link.conn, None
        if conn is not None:
            _close_later(conn)

    def _each(self, work, hosts=None):
        """``work(name, conn)`` on every host (or ``hosts``) in parallel, all within ``call_timeout``.

        Returns ({host: value}, {host: exception}); a host that did not answer in time gets a
        LibvirtBackendError and a new connection next time.
        """
        names = sorted(self.links if hosts is None else hosts)
        deadline = time.monotonic() + self.call_timeout
        calls = [(name, _Call(lambda name=name: work(name, self._connect(name)), 'leveller-libvirt-%s' % name))
                 for name in names]
        values, errors = {}, {}
        for name, call in calls:
            if not call.done.wait(max(0.0, deadline - time.monotonic())):
                errors[name] = LibvirtBackendError('libvirt of host %s at %s did not answer within %g s'
                                                   % (name, redact_url(self.uris[name]), self.call_timeout))
                self._drop(name)
            elif call.error is not None:
                errors[name] = call.error
                self._check_link(name)
            else:
                values[name] = call.value
        return values, errors

    def _check_link(self, name):
        link = self.links[name]
        conn = link.conn
        if conn is not None:
            if not _is_alive(conn):
                self._drop(name)

    def _one(self, name, work):
        """``work(name, conn)`` on one host within ``call_timeout``; raises what it raised."""
        values, errors = self._each(work, [name])
        if name in errors:
            raise errors[name]
        return values[name]

    # -- finding a domain ------------------------------------------------------------
    @staticmethod
    def _uuid(instance):
        try:
            return str(uuid_mod.UUID(str(instance)))
        except ValueError:
            raise _refused('%r is not a domain UUID: on plain libvirt an instance is named by its domain '
                           'UUID (the instance id hypervisor_load_info gives)' % (instance,))

    def _survey(self, uuid):
        """Every host's copy of the domain: ({host: copy}, {host: error}) for hosts that did not answer."""
        def look(name, conn):
            try:
                return _copy_of(conn.lookupByUUIDString(uuid))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == _ERR_NO_DOMAIN:
                    return None
                raise
        values, errors = self._each(look)
        return dict((h, c) for h, c in values.items() if c is not None), errors

    def _active(self, uuid):
        with self._lock:
            for mig in self._migrations:
                if mig.instance == uuid and mig.status == 'running':
                    return mig
        return None

    def _view(self, uuid, copies, errors, migration):
        """The instance as the executor reads it, from every host's copy."""
        if not copies:
            if errors:
                raise LibvirtBackendError('domain %s is on no host that answered; %s' % (uuid, _errors_text(errors)))
            return None
        incoming = sorted(h for h, c in copies.items() if c['active'] and _incoming(c))
        live = sorted(h for h, c in copies.items() if c['active'] and not _incoming(c))
        if not live and errors:
            raise LibvirtBackendError('domain %s runs on no host that answered (%s); %s' % (
                uuid, ', '.join('%s: %s' % (h, _describe(c)) for h, c in sorted(copies.items())),
                _errors_text(errors)))
        migrating = (migration is not None or bool(incoming)
                     or any(_job_running(c) and c['job_operation'] in _JOB_MIGRATION for c in copies.values()))
        host = min(copies, key=lambda h: _rank(h, copies[h]))
        copy = copies[host]
        power, status, task = DOMAIN_STATES.get(copy['state'], ('unknown', 'UNKNOWN', None))
        if status == 'PAUSED':
            status = 'ACTIVE'  # paused: ACTIVE with power state 3, as a Nova instance that is live-migratable
        notes = []
        if len(live) > 1 and not migrating:
            status = 'ERROR'
            notes.append('runs on %s: exactly one copy expected; check which is current before anything else '
                         'touches it' % ' and '.join(live))
        elif len(live) > 1:
            notes.append('live on %s while migrating (switch-over)' % ' and '.join(live))
        if migrating:
            task = 'migrating'
        elif _job_running(copy):
            task = _JOB_TASKS.get(copy['job_operation'], 'libvirt-job')
        others = sorted(h for h in copies if h != host and h not in live and h not in incoming)
        if others:
            notes.append('also defined on %s (%s)' % (', '.join(others), '; '.join(_describe(copies[h]) for h in others)))
        if errors:
            notes.append(_errors_text(errors))
        if migration is not None and copies.get(migration.source) and copies[migration.source]['progress']:
            with self._lock:
                migration.progress = copies[migration.source]['progress']
        return {
            'id': uuid,
            'name': copy['name'],
            'status': status,
            'task_state': task,
            'host': host,
            'power_state': POWER_STATE.get(copy['state'], 0),
            'power': power,
            'locked': False,
            'metadata': {},
            'tags': [],
            'flavor': {'vcpus': copy['vcpus'], 'memory_mb': copy['memory_mb'], 'disk_gb': 0},
            'copies': dict((h, _describe(c)) for h, c in copies.items()),
            'note': '; '.join(notes) or None,
        }

    # -- read / verify -----------------------------------------------------------------
    def read(self, instance):
        uuid = self._uuid(instance)
        # Taken before the hosts are asked: a migration that ends during the read still reads as
        # migrating, so a half-switched view (one host read before, one after) is never taken for
        # two running copies or for the end.
        migration = self._active(uuid)
        copies, errors = self._survey(uuid)
        return self._view(uuid, copies, errors, migration)

    def hosts(self):
        def answer(name, conn):
            conn.getInfo()
            return self.maintenance_reason(name, conn)
        values, errors = self._each(answer)
        out = {}
        for name in sorted(self.links):
            if name in errors:
                out[name] = {'status': 'enabled', 'state': 'down', 'forced_down': False, 'disabled_reason': None,
                             'error': _text(errors[name])}
                continue
            reason = values[name]
            out[name] = {'status': 'disabled' if reason else 'enabled', 'state': 'up', 'forced_down': False,
                         'disabled_reason': reason}
        return out

    def maintenance_reason(self, host, conn):
        """Why ``host`` takes no instances (its maintenance mark, see ``_sources.libvirt``), or None."""
        return maintenance_mark(conn)

    def set_maintenance(self, host, reason):
        """Put the maintenance mark on ``host`` (replacing an earlier one); returns the mark's reason."""
        from xml.sax.saxutils import escape
        xml = ("<secret ephemeral='no' private='yes'><description>%s</description>"
               "<usage type='tls'><name>%s</name></usage></secret>"
               % (escape(MAINTENANCE_PREFIX + reason), MAINTENANCE_USAGE))

        def define(name, conn):
            conn.secretDefineXML(xml, 0)  # same usage: libvirt updates the existing secret
            return maintenance_mark(conn)
        try:
            return self._one(host, define)
        except libvirt.libvirtError as exc:
            raise LibvirtBackendError('cannot put the maintenance mark (a libvirt secret with usage %s) on host %s: '
                                      '%s' % (MAINTENANCE_USAGE, host, _text(exc)), status=_refusal_status(exc))

    def clear_maintenance(self, host):
        """Remove the maintenance mark of ``host``; returns the reason it had (None: there was none)."""
        def undefine(name, conn):
            reason = maintenance_mark(conn)
            if reason is not None:
                conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_TLS, MAINTENANCE_USAGE).undefine()
            return reason
        try:
            return self._one(host, undefine)
        except libvirt.libvirtError as exc:
            raise LibvirtBackendError('cannot remove the maintenance mark of host %s: %s' % (host, _text(exc)),
                                      status=_refusal_status(exc))

    # -- what HostRun and live_migrate ask of Nova, answered from libvirt ----------------
    def compute_services(self):
        """The hosts as Nova's services list reads (keyed by host; ``id`` is the host name)."""
        out = {}
        for name, svc in self.hosts().items():
            svc = dict(svc, id=name, host=name, binary='libvirtd', zone=None)
            out[name] = svc
        return out

    def set_service_status(self, service_id, enabled, reason=None):
        if enabled:
            self.clear_maintenance(service_id)
        else:
            self.set_maintenance(service_id, reason or 'maintenance')

    def servers_on_host(self, host):
        """The domains of ``host`` as instances (id, name, status, task_state, host), running or not."""
        def listing(name, conn):
            out = []
            for dom in conn.listAllDomains(0):
                copy = _copy_of(dom)
                if copy is None:
                    continue
                power, status, task = DOMAIN_STATES.get(copy['state'], ('unknown', 'UNKNOWN', None))
                if _incoming(copy):
                    continue  # a migration's half-built copy is not an instance of this host yet
                if _job_running(copy):
                    task = ('migrating' if copy['job_operation'] in _JOB_MIGRATION
                            else _JOB_TASKS.get(copy['job_operation'], 'libvirt-job'))
                out.append({'id': dom.UUIDString(), 'name': copy['name'], 'status': status, 'task_state': task,
                            'host': host, 'power': power,
                            'flavor': {'vcpus': copy['vcpus'], 'memory_mb': copy['memory_mb'], 'disk_gb': 0}})
            return out
        if host not in self.links:
            raise _refused('%s is not one of the libvirt hosts (%s)' % (host, ', '.join(sorted(self.links))))
        try:
            return self._one(host, listing)
        except libvirt.libvirtError as exc:
            raise LibvirtBackendError('libvirt of host %s: %s' % (host, _text(exc)))

    def get_server(self, ref):
        """The instance with domain UUID ``ref``, or None (also when ``ref`` is not a UUID)."""
        try:
            uuid = str(uuid_mod.UUID(str(ref)))
        except ValueError:
            return None
        return self.read(uuid)

    def find_servers(self, name):
        """Instances whose domain name is ``name``, on every host that answers."""
        found = []
        for host in sorted(self.links):
            for server in self.servers_on_host(host):
                if server['name'] == name:
                    found.append(server)
        return found

    def host_down(self, role, host, service):
        error = (service or {}).get('error')
        return 'libvirt of %s %s does not answer%s' % (role, host, ' (%s)' % error if error else '')

    def how_to_check(self, instance):
        return '`virsh -c URI list --all --uuid` and `virsh -c URI domjobinfo %s` on each host (%s)' % (
            instance, ', '.join(sorted(self.links)))

    def lock_key(self):
        """The lock key of this set of hosts: runs over the same URIs exclude each other."""
        import hashlib
        raw = 'libvirt|' + '|'.join('%s=%s' % (h, self.uris[h].strip().lower()) for h in sorted(self.uris))
        return 'libvirt-' + hashlib.sha256(raw.encode('utf-8')).hexdigest()[:24]

    def needs(self, instance):
        found = self.read(instance)
        if found is None:
            return {}
        return {'VCPU': found['flavor']['vcpus'], 'MEMORY_MB': found['flavor']['memory_mb']}

    def room(self, host):
        if host not in self.links:
            raise _refused('%s is not one of the libvirt hosts (%s)' % (host, ', '.join(sorted(self.links))))
        try:
            cpus, memory, vcpus, memory_mb = self._one(host, lambda name, conn: node_held(conn))
        except libvirt.libvirtError as exc:
            raise LibvirtBackendError('libvirt of host %s: %s' % (host, _text(exc)))
        # As the snapshot counts them (_sources.libvirt.inventory): node CPUs and memory times the
        # ratio, less what every domain defined there holds, running or not; nothing reserved.
        return {
            'VCPU': {'free': int(cpus * self.ratio['vcpus']) - vcpus, 'max_unit': cpus, 'total': cpus,
                     'used': vcpus, 'allocation_ratio': self.ratio['vcpus']},
            'MEMORY_MB': {'free': int(memory * self.ratio['memory_mb']) - memory_mb, 'max_unit': memory,
                          'total': memory, 'used': memory_mb, 'allocation_ratio': self.ratio['memory_mb']},
        }

    # -- start / poll / abort --------------------------------------------------------------
    def migrations(self, instance, kind):
        if kind != 'live':
            return []
        uuid = self._uuid(instance)
        for mig in self._lost(uuid):
            self._settle_lost(mig)
        with self._lock:
            return [m.view() for m in self._migrations if m.instance == uuid]

    def start(self, kind, instance, destination):
        if kind != 'live':
            raise _refused('%s move of %s refused: %s' % (kind, instance, NO_COLD))
        if destination is None:
            raise _refused('live migration of %s refused: plain libvirt has no scheduler to choose a '
                           'destination; name one (a host of libvirt_uris)' % instance)
        if destination not in self.links:
            raise _refused('live migration of %s refused: destination %s is not one of the libvirt hosts (%s)'
                           % (instance, destination, ', '.join(sorted(self.links))))
        uuid = self._uuid(instance)
        running = self._active(uuid)
        if running is not None:
            raise _refused('live migration of %s refused: migration %s of it (%s -> %s) is still running'
                           % (uuid, running.id, running.source, running.destination))
        copies, errors = self._survey(uuid)
        if destination in errors:
            raise _refused('live migration of %s refused, nothing started: destination %s did not answer (%s)'
                           % (uuid, destination, _text(errors[destination])))
        if destination in copies:
            raise _refused('live migration of %s refused, nothing started: destination %s already has a domain '
                           'with that UUID (%s, %s); a migration there would clash with it: remove it there '
                           '(virsh undefine) if it is stale, or choose another destination'
                           % (uuid, destination, copies[destination]['name'], _describe(copies[destination])))
        live = sorted(h for h, c in copies.items() if c['active'] and not _incoming(c))
        elsewhere = sorted(h for h, c in copies.items() if c['active'] and _incoming(c))
        if len(live) != 1:
            where = ', '.join('%s: %s' % (h, _describe(c)) for h, c in sorted(copies.items())) or 'on no host'
            if errors:
                where += '; %s' % _errors_text(errors)
            raise _refused('live migration of %s refused, nothing started: it must run on exactly one host, its '
                           'source (%s)' % (uuid, where))
        source = live[0]
        copy = copies[source]
        if copy['state'] not in _MIGRATABLE:
            raise _refused('live migration of %s refused, nothing started: it is %s on %s; libvirt live-migrates '
                           'running or paused domains' % (uuid, _describe(copy), source))
        if _job_running(copy) or elsewhere:
            raise _refused('live migration of %s refused, nothing started: it is busy on %s (%s)' % (
                uuid, source, '; '.join('%s: %s' % (h, _describe(copies[h])) for h in [source] + elsewhere)))
        with self._lock:
            mig = _Migration(next(self._ids), uuid, copy['name'], source, destination, self.bandwidth)
            self._migrations.append(mig)
            promise = mig.view()
        call = threading.Thread(target=self._migrate, args=(mig,), name='leveller-migrate-%s' % mig.id)
        call.daemon = True
        call.start()
        return promise

    def _migrate(self, mig):
        """The migration call, on its own thread and connection: it returns when libvirt has ended it."""
        conn = None
        try:
            with self._lock:
                if mig.abort_requested:
                    self._end(mig, 'cancelled', 'aborted before the migration call was made')
                    return
            conn = self._open(self.uris[mig.source])
            dom = conn.lookupByUUIDString(mig.instance)
            params = {}
            if mig.bandwidth:
                params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = mig.bandwidth
            flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                     | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
            if self.storage == 'copy':
                flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
            with self._lock:
                if mig.abort_requested:
                    self._end(mig, 'cancelled', 'aborted before the migration call was made')
                    return
                mig.phase = 'migrating'
            dom.migrateToURI3(self.peer_uris[mig.destination], params, flags)
            note = self._record_move(mig)
            with self._lock:
                self._end(mig, 'completed', note)
        except Exception as exc:  # every way the call can end is a record status
            with self._lock:
                started = mig.phase == 'migrating'
                if _code(exc) == _ERR_OPERATION_ABORTED:
                    self._end(mig, 'cancelled', _text(exc))
                elif not started:
                    # Nothing was asked of libvirt yet: certainly not migrating.
                    self._end(mig, 'failed', 'libvirt of host %s: %s' % (mig.source, _text(exc)))
                elif libvirt is not None and isinstance(exc, libvirt.libvirtError) and _alive(conn):
                    # The source's libvirtd answered: it ended the migration and says why.
                    self._end(mig, 'failed', _text(exc))
                else:
                    # The answer was lost with the connection: libvirt may still be migrating.
                    mig.lost = _text(exc)
                    mig.phase = 'lost'
        finally:
            if conn is not None:
                _close_later(conn)

    def _end(self, mig, status, message=None):
        """Under self._lock."""
        mig.status = status
        mig.message = message
        mig.phase = 'ended'
        mig.ended_at = _now()
        mig.seconds = time.monotonic() - mig.started

    def _record_move(self, mig):
        """Write the completed move into the domain's metadata on its destination (cooldown without
        Nova); returns a note when it could not be written (the move itself stands)."""
        xml = move_xml(_now(), mig.source, mig.destination)
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG

        def write(name, conn):
            conn.lookupByUUIDString(mig.instance).setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, MOVE_PREFIX, MOVE_NS, flags)
        try:
            self._one(mig.destination, write)
        except Exception as exc:  # the move is done; only its cooldown record is missing
            return 'the move record (metadata %s) could not be written on %s: %s' % (MOVE_NS, mig.destination, _text(exc))
        return None

    def _lost(self, uuid):
        with self._lock:
            return [m for m in self._migrations if m.instance == uuid and m.status == 'running' and m.lost]

    def _settle_lost(self, mig):
        """A migration whose call was cut off has ended when no host shows a migration job for it."""
        copies, errors = self._survey(mig.instance)
        if mig.source in errors or mig.destination in errors:
            return
        if any(_job_running(c) or _incoming(c) for c in copies.values()):
            return
        live = sorted(h for h, c in copies.items() if c['active'])
        with self._lock:
            if mig.status != 'running':
                return
            done = live == [mig.destination]
        if done:
            note = self._record_move(mig)
        with self._lock:
            if mig.status != 'running':
                return
            if done:
                self._end(mig, 'completed', '; '.join(t for t in (
                    'the migration call was cut off (%s); the hosts show the domain running on %s only'
                    % (mig.lost, mig.destination), note) if t))
            elif live == [mig.source]:
                self._end(mig, 'cancelled' if mig.abort_requested else 'failed',
                          'the migration call was cut off (%s); the hosts show the domain still running on its '
                          'source %s with no migration job' % (mig.lost, mig.source))

    def abort(self, instance, migration_id):
        uuid = self._uuid(instance)
        with self._lock:
            mig = next((m for m in self._migrations if m.id == migration_id and m.instance == uuid), None)
            if mig is not None:
                if mig.status != 'running':
                    return None  # it has ended: nothing to abort
                mig.abort_requested = True
                if mig.phase == 'preparing':
                    return None  # its thread sees the request before it calls libvirt
                source = mig.source
        if mig is None:
            # Not ours (begun by an earlier, killed run): abort the migration job wherever it runs.
            copies, errors = self._survey(uuid)
            found = sorted(h for h, c in copies.items() if _job_running(c) and c['job_operation'] == 5)
            if not found:
                raise LibvirtBackendError('no migration job of %s to abort on the hosts that answered%s'
                                          % (uuid, '; %s' % _errors_text(errors) if errors else ''), status=409)
            source = found[0]

        def abort_job(name, conn):
            conn.lookupByUUIDString(uuid).abortJob()
        try:
            self._one(source, abort_job)
        except libvirt.libvirtError as exc:
            status = 409 if exc.get_error_code() in (_ERR_OPERATION_INVALID, _ERR_NO_DOMAIN) else None
            raise LibvirtBackendError('abortJob of %s on %s: %s' % (uuid, source, _text(exc)), status=status)
        return None

    def confirm(self, instance):
        raise _refused('confirm of %s refused: %s' % (instance, NO_COLD))

    def power_on(self, instance):
        raise _refused('power on of %s refused: %s' % (instance, NO_COLD))

    # -- the end -------------------------------------------------------------------
    def close(self, wait=2.0):
        """Close the hosts' connections, waiting ``wait`` seconds at most for hosts that hang (a
        migration thread still running keeps its own connection)."""
        closing = []
        for link in self.links.values():
            with link.lock:
                conn, link.conn = link.conn, None
            if conn is not None:
                closing.append(_close_later(conn))
        deadline = time.monotonic() + wait
        for thread in closing:
            thread.join(max(0.0, deadline - time.monotonic()))


def _copy_of(dom):
    """One host's copy of a domain; a domain that vanishes while it is read (a migration ending) is None."""
    try:
        state, reason = dom.state()
        info = dom.info()
        active = bool(dom.isActive())
        persistent = bool(dom.isPersistent())
        name = dom.name()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == _ERR_NO_DOMAIN:
            return None
        raise
    job_type = job_operation = None
    progress = None
    if active:
        try:
            stats = dom.jobStats()
        except libvirt.libvirtError:
            stats = {}  # an incoming copy has none; drivers without jobs (test:///) neither
        job_type = stats.get('type')
        job_operation = stats.get('operation')
        if job_type in _JOB_ACTIVE and stats.get('data_total'):
            progress = {'data_processed': stats.get('data_processed', 0), 'data_total': stats['data_total'],
                        'data_remaining': stats.get('data_remaining')}
    return {'name': name, 'state': state, 'reason': reason, 'active': active, 'persistent': persistent,
            'vcpus': int(info[3]), 'memory_mb': int(info[1]) // 1024, 'job_type': job_type,
            'job_operation': job_operation, 'progress': progress}


def _alive(conn):
    if conn is None:
        return False
    try:
        return bool(conn.isAlive())
    except Exception:  # a connection that cannot say is not alive
        return False


def _close_later(conn):
    """Close a connection without waiting for it (closing one to a hung host can block)."""
    def close():
        try:
            conn.close()
        except Exception:  # nothing left to do with it
            pass
    thread = threading.Thread(target=close, name='leveller-libvirt-close')
    thread.daemon = True
    thread.start()
    return thread


def _close_at_exit(ref):
    """Close a backend's connections before the interpreter unloads libvirt (whose connection
    objects would otherwise complain on stderr as they are collected)."""
    backend = ref()
    if backend is not None:
        backend.close()


def _refusal_status(exc):
    """400 for an error libvirt returns before changing anything it was asked (unsupported, denied,
    invalid), None (unclear) otherwise."""
    code = _code(exc)
    if code in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ACCESS_DENIED, libvirt.VIR_ERR_OPERATION_DENIED,
                libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_OPERATION_INVALID):
        return 400
    return None


def _errors_text(errors):
    return 'no answer from ' + '; '.join('%s (%s)' % (h, _text(e)) for h, e in sorted(errors.items()))
