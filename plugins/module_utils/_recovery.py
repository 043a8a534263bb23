# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery of a failed compute host: evacuate only a host that is proven off.

The decisions of ``evacuate_host state=evacuated`` and of bringing such a host back
(``state=enabled``), as plain code over a Nova-like object, a fence driver (:mod:`._fence`)
and an injected clock, so every refusal is tested without a cloud or a BMC.

Going (:class:`Recovery`), each step recorded in ``steps`` for the module's result:

a. ``heartbeat``: refuse while the host's compute service reads up, or has reported within
   ``service_down_time``: nova-compute is alive there, maybe only cut off, and its instances
   may still run;
b. ``mass_failure``: refuse when more than ``max_down_fraction`` of the compute hosts in scope
   are down at once: the controller is more likely cut off than half the cloud dead;
c. ``bmc``, ``power_off``, ``power_confirm``: power the host off through its BMC (a hard off)
   and wait until the BMC reads off within the driver's ``fence_timeout``; an unreachable BMC,
   a refused order or a host still on at the deadline is a refusal. Without a fence driver only
   ``fenced=true`` with a heartbeat older than ``min_down_seconds`` is taken (step ``fence``,
   result ``asserted``: the operator's word, not verified);
d. ``forced_down``, ``disable``: set forced_down on the compute service (Nova then treats it as
   down at once) and disable it with a reason that says it was evacuated;
e. the caller evacuates, and calls :meth:`Recovery.recheck` before each evacuation: the host
   must still be forced down, silent and (with a driver) read off at its BMC.

Coming back (:func:`reenable`): see its docstring for the rule.

Heartbeat age. Nova's ``updated_at`` is written by the database, on the cloud's clock, at every
report of nova-compute (and at every change made through the services API). Its age is judged
twice: against this host's clock, and against the newest heartbeat of the other compute hosts
(which report every few seconds, so that is close to the cloud's "now"). To call a host silent
the smaller of the two ages is used, to call it alive the larger: a skewed controller clock can
only make a decision more cautious, never less.

The Nova-like object needs these methods (the first four are those of ``_nova.Nova``):

- ``compute_services()``: ``{host: {'id', 'host', 'status' ('enabled'|'disabled'), 'state'
  ('up'|'down'), 'forced_down' (bool), 'disabled_reason', 'updated_at' (Nova's UTC time text),
  'zone'}}``;
- ``set_forced_down(service_id, forced_down)``;
- ``set_service_status(service_id, enabled, reason=None)``;
- ``get_server(server_id)``: the server as ``_nova.server_view``, or None when it is gone;
- ``evacuations_from(host)``: the evacuation migration records whose source is ``host``, any
  status, as dicts with ``id``, ``uuid``, ``instance`` (the instance UUID), ``status``,
  ``source``, ``destination``, ``created_at`` and ``updated_at`` (GET /os-migrations with
  ``source_compute=<host>&migration_type=evacuation``); only :func:`reenable` uses it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import re
import time

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import FailureClass, LevellerError
from ansible_collections.cloudops.leveller.plugins.module_utils._fence import FenceError
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import HOME_METADATA_KEY

SERVICE_DOWN_TIME = 60  # Nova's default [DEFAULT]service_down_time
MAX_DOWN_FRACTION = 0.5
POLL_INTERVAL = 2.0
MARK = 'cloudops.leveller'
EVACUATED_BY = 'evacuated by %s' % MARK
HOME_KEY = HOME_METADATA_KEY
HA_KEY = 'HA_Enabled'  # Masakari's instance flag
PRIORITY_KEY = 'leveller:priority'
# Evacuation records a starting nova-compute on the source cleans up (it destroys the local
# guest and sets the record 'completed'): nova/compute/manager.py _destroy_evacuated_instances.
PENDING_CLEANUP = ('accepted', 'pre-migrating', 'done')
_TRUE = ('true', 'yes', '1', 'on')


class RecoveryRefused(LevellerError):
    """A recovery step refused or failed; ``steps`` holds every step up to it.

    ``half_state`` is True when a change was left half done (forced_down cleared, the service
    still disabled); the next :func:`reenable` completes it.
    """

    def __init__(self, message, failure=FailureClass.INCONSISTENT, steps=None, half_state=False):
        super(RecoveryRefused, self).__init__(message, failure)
        self.steps = list(steps or [])
        self.half_state = half_state


# -- time ------------------------------------------------------------------------------

_NOVA_TIME = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$')


def parse_nova_time(text):
    """Seconds since the epoch for Nova's ``2026-05-01T10:00:00.000000`` (UTC); None for None."""
    if text is None:
        return None
    m = _NOVA_TIME.match(str(text).strip())
    if not m:
        raise ValueError('not a Nova time: %r' % (text,))
    fields = [int(m.group(i)) for i in range(1, 7)]
    seconds = calendar.timegm(tuple(fields) + (0, 0, 0)) + float(m.group(7) or 0)
    offset = m.group(8)
    if offset and offset != 'Z':
        sign = -1 if offset[0] == '-' else 1
        digits = offset[1:].replace(':', '')
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def format_time(seconds):
    """UTC ISO time, to the second, for messages and the disabled reason."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


def heartbeat_age(host, services, now):
    """(low, high) estimates of the seconds since ``host`` last reported; (None, None) if never.

    low/high are the smaller/larger of the age on this host's clock and the age against the
    newest heartbeat of the other hosts (see the module docstring). ValueError for a time Nova
    did not write as a time.
    """
    reported = parse_nova_time(services[host].get('updated_at'))
    if reported is None:
        return None, None
    ages = [now - reported]
    peers = []
    for other, svc in services.items():
        if other != host and svc.get('updated_at'):
            try:
                peers.append(parse_nova_time(svc['updated_at']))
            except ValueError:
                continue
    if peers:
        ages.append(max(peers) - reported)
    low, high = min(ages), max(ages)
    return max(0.0, low), max(0.0, high)


def _age_text(seconds):
    return 'never' if seconds is None else '%d s ago' % int(round(seconds))


# -- reasons -----------------------------------------------------------------------------

def evacuation_reason(now):
    """The disabled reason of a service evacuated at ``now`` (epoch seconds)."""
    return '%s at %s' % (EVACUATED_BY, format_time(now))


def is_evacuation_reason(reason):
    return bool(reason) and reason.startswith(EVACUATED_BY)


def is_our_reason(reason, our_reasons=()):
    """True for a disabled reason this collection wrote (it names it) or one of ``our_reasons``."""
    return bool(reason) and (MARK in reason or reason in (our_reasons or ()))


def service_view(svc):
    return dict((k, svc.get(k)) for k in ('status', 'state', 'forced_down', 'disabled_reason', 'updated_at'))


# -- going: fence, then evacuate -----------------------------------------------------------

class Recovery(object):
    """The fencing sequence for one failed host (:meth:`prepare`) and the re-check (:meth:`recheck`).

    ``fence`` is a :class:`._fence.Fence` or None; ``fenced`` the operator's statement that the
    host is off (used only without a driver). ``scope`` lists the compute hosts the mass-failure
    brake counts (default: every nova-compute host). ``wall`` gives epoch seconds (heartbeat
    ages, the disabled reason), ``clock`` and ``sleep`` drive the wait for the BMC.
    """

    def __init__(self, nova, host, fence=None, fenced=False, service_down_time=SERVICE_DOWN_TIME,
                 min_down_seconds=None, max_down_fraction=MAX_DOWN_FRACTION, scope=None,
                 poll_interval=POLL_INTERVAL, disabled_reason=None, check_mode=False,
                 wall=None, clock=None, sleep=None):
        if not service_down_time or service_down_time <= 0:
            raise LevellerError('service_down_time must be a positive number of seconds (Nova\'s '
                                '[DEFAULT]service_down_time, 60 unless changed), got %r' % (service_down_time,))
        if min_down_seconds is None:
            min_down_seconds = 2 * service_down_time
        if min_down_seconds < service_down_time:
            raise LevellerError('min_down_seconds (%s) is below service_down_time (%s): a host silent for less '
                                'than service_down_time still reads up. Give at least %s, or leave it unset (%s)'
                                % (min_down_seconds, service_down_time, service_down_time, 2 * service_down_time))
        if max_down_fraction is None or not 0 < max_down_fraction <= 1:
            raise LevellerError('max_down_fraction must be above 0 and at most 1 (1 turns the brake off), got %r'
                                % (max_down_fraction,))
        if poll_interval is None or poll_interval <= 0:
            raise LevellerError('poll_interval must be a positive number of seconds, got %r' % (poll_interval,))
        self.nova = nova
        self.host = host
        self.fence = fence
        self.fenced = bool(fenced)
        self.service_down_time = service_down_time
        self.min_down_seconds = min_down_seconds
        self.max_down_fraction = max_down_fraction
        self.scope = list(scope) if scope is not None else None
        self.poll_interval = poll_interval
        self.disabled_reason = disabled_reason
        self.check_mode = check_mode
        self.wall = wall or time.time
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.steps = []
        self.verified = None  # True: off at the BMC; False: the operator's word
        self.service_before = None
        self.service_after = None
        self._baseline = None  # updated_at once our own changes are made
        self._prepared = False

    # -- plumbing ---------------------------------------------------------------------
    def _step(self, name, result, detail, **extra):
        entry = dict(step=name, result=result, detail=detail)
        entry.update(extra)
        self.steps.append(entry)
        return entry

    def _refuse(self, name, detail, message, failure=FailureClass.INCONSISTENT):
        """Record a refused step; returns the RecoveryRefused to raise."""
        self._step(name, 'refused', detail)
        return RecoveryRefused(message, failure, self.steps)

    def _services(self, name):
        try:
            return self.nova.compute_services()
        except Exception as exc:
            raise self._refuse(name, 'cannot list nova-compute services: %s' % exc,
                               'refusing to evacuate %s: cannot list nova-compute services: %s' % (self.host, exc),
                               FailureClass.UNREACHABLE)

    # -- the sequence -----------------------------------------------------------------
    def prepare(self):
        """Steps a-d; returns {host, fencing, service: {before, after}, steps}, or raises RecoveryRefused.

        ``fencing`` is 'verified' (off at the BMC), 'would be verified' (check mode) or
        'asserted' (fenced=true without a driver).
        """
        host = self.host
        services = self._services('heartbeat')
        svc = services.get(host)
        if svc is None:
            raise self._refuse('heartbeat', 'no nova-compute service on %s' % host,
                               'unknown host %r: not a nova-compute service host of this cloud (known: %s)'
                               % (host, ', '.join(sorted(services)) or 'none'), FailureClass.CONFIGURATION)
        self.service_before = service_view(svc)
        low = self._check_heartbeat(services, svc)
        self._check_brake(services)
        if self.fence is not None:
            self._power_off()
        else:
            self._assert_fenced(low)
        self._force_down(svc)
        self._disable(svc)
        self._prepared = True
        fencing = 'asserted' if not self.verified else 'would be verified' if self.check_mode else 'verified'
        return dict(host=host, fencing=fencing,
                    service={'before': self.service_before, 'after': self.service_after}, steps=self.steps)

    def _check_heartbeat(self, services, svc):
        host = self.host
        if svc.get('state') == 'up' and not svc.get('forced_down'):
            raise self._refuse('heartbeat', 'Nova reads the compute service of %s up' % host,
                               'refusing to evacuate %s: its compute service is up, so its instances may still be '
                               'running there and evacuating would make a second copy of each. Drain a live host '
                               'with state=drained' % host)
        try:
            low, high = heartbeat_age(host, services, self.wall())
        except ValueError as exc:
            raise self._refuse('heartbeat', str(exc), 'refusing to evacuate %s: cannot judge its heartbeat (%s)' % (host, exc))
        if low is not None and low < self.service_down_time:
            raise self._refuse('heartbeat', 'reported %s (updated_at %s), within service_down_time %s s'
                               % (_age_text(low), svc.get('updated_at'), self.service_down_time),
                               'refusing to evacuate %s: its compute service reported %s (updated_at %s), within '
                               'service_down_time (%s s). nova-compute may be alive there, only cut off, with its '
                               'instances running (forced_down does not stop it; a change through the services API '
                               'also moves updated_at). Make sure the host is off, wait until its last report is '
                               'older than %s s, then run again' % (host, _age_text(low), svc.get('updated_at'),
                                                                    self.service_down_time, self.service_down_time))
        self._step('heartbeat', 'ok', 'last report %s (updated_at %s), older than service_down_time %s s'
                   % (_age_text(low), svc.get('updated_at'), self.service_down_time))
        return low

    def _check_brake(self, services):
        scope = self.scope if self.scope is not None else sorted(services)
        unknown = sorted(h for h in scope if h not in services)
        if unknown:
            raise self._refuse('mass_failure', 'unknown host(s) in scope: %s' % ', '.join(unknown),
                               'the recovery scope names host(s) that run no nova-compute service: %s; give service '
                               'host names as in openstack compute service list' % ', '.join(unknown),
                               FailureClass.CONFIGURATION)
        if self.host not in scope:
            scope = list(scope) + [self.host]
        down = sorted(h for h in scope if services[h].get('state') != 'up' or services[h].get('forced_down'))
        fraction = float(len(down)) / len(scope)
        detail = '%d of %d compute host(s) in scope down (%s); max_down_fraction %s' % (
            len(down), len(scope), ', '.join(down), self.max_down_fraction)
        if fraction > self.max_down_fraction:
            raise self._refuse('mass_failure', detail,
                               'refusing to evacuate %s: %d of %d compute hosts in scope are down at once (%s), more '
                               'than max_down_fraction=%s. The controller is more likely cut off from them than they '
                               'all failed, and evacuating would start second copies. Check the control plane\'s view '
                               'first; to recover anyway, raise max_down_fraction (1.0 turns this brake off) or narrow '
                               'the scope' % (self.host, len(down), len(scope), ', '.join(down), self.max_down_fraction))
        self._step('mass_failure', 'ok', detail)

    def _power_off(self):
        fence, host = self.fence, self.host
        where = fence.describe()
        try:
            state = fence.power_state()
        except FenceError as exc:
            raise self._refuse('bmc', 'cannot read the power state: %s' % exc,
                               'refusing to evacuate %s: its BMC cannot be read (%s). A host whose power state is '
                               'unknown may still run its instances. Fix the BMC access (fence) and run again'
                               % (host, exc), exc.failure)
        self._step('bmc', 'ok', '%s reads %s' % (where, state))
        if state == 'off':
            self._step('power_off', 'ok', 'already off at the BMC: no order sent')
        elif self.check_mode:
            self._step('power_off', 'would', 'would power off through %s (hard off)' % where)
            self._step('power_confirm', 'would', 'would wait up to %s s for the BMC to read off' % fence.fence_timeout)
            self.verified = True
            return
        else:
            try:
                fence.power_off()
            except FenceError as exc:
                # A BMC may answer an error to an order it carried out, or to a host already off.
                try:
                    now_state = fence.power_state()
                except FenceError:
                    now_state = 'unknown'
                if now_state != 'off':
                    raise self._refuse('power_off', 'power off refused: %s' % exc,
                                       'refusing to evacuate %s: its BMC did not take the power off order (%s) and '
                                       'reads %s' % (host, exc, now_state), exc.failure)
                self._step('power_off', 'ok', 'the BMC answered an error (%s) but reads off' % exc)
            else:
                self._step('power_off', 'sent', 'hard power off sent through %s' % where)
        started = self.clock()
        deadline = started + fence.fence_timeout
        last, error = state, None
        while True:
            try:
                last, error = fence.power_state(), None
            except FenceError as exc:
                last, error = 'unknown', exc
            if last == 'off':
                break
            if self.clock() >= deadline:
                why = ' (last read failed: %s)' % error if error is not None else ''
                raise self._refuse('power_confirm', 'still reads %s after %s s%s' % (last, fence.fence_timeout, why),
                                   'refusing to evacuate %s: its BMC still reads %s %s s after the power off order%s. '
                                   'The host may still run its instances: check it at the BMC, or raise '
                                   'fence.fence_timeout if it is slow to power off' % (host, last, fence.fence_timeout, why))
            self.sleep(self.poll_interval)
        self.verified = True
        self._step('power_confirm', 'ok', 'the BMC reads off (after %.1f s)' % (self.clock() - started))

    def _assert_fenced(self, low):
        host = self.host
        if not self.fenced:
            raise self._refuse('fence', 'no fence driver and fenced is false',
                               'refusing to evacuate %s: nothing proves it is off. Give fence (driver redfish or ipmi, '
                               'its BMC address and credentials) to power it off through its BMC, or power it off '
                               'yourself and pass fenced=true' % host, FailureClass.CONFIGURATION)
        if low is not None and low < self.min_down_seconds:
            raise self._refuse('fence', 'fenced=true but the last report is %s, under min_down_seconds %s s'
                               % (_age_text(low), self.min_down_seconds),
                               'refusing to evacuate %s on fenced=true alone: its compute service reported %s, and '
                               'without a fence driver a host must have been silent for min_down_seconds (%s s). Wait '
                               '%d s more, or give fence to have its BMC power it off'
                               % (host, _age_text(low), self.min_down_seconds, int(self.min_down_seconds - low) + 1))
        self.verified = False
        self._step('fence', 'asserted', 'asserted by the operator (fenced=true), not verified: no fence driver; '
                   'last report %s, min_down_seconds %s s' % (_age_text(low), self.min_down_seconds))

    def _force_down(self, svc):
        host = self.host
        after = dict(self.service_before)
        self.service_after = after
        if svc.get('forced_down'):
            self._step('forced_down', 'ok', 'already set')
            return
        after.update(forced_down=True, state='down')
        if self.check_mode:
            self._step('forced_down', 'would', 'would set forced_down on the compute service of %s' % host)
            return
        try:
            self.nova.set_forced_down(svc['id'], True)
        except Exception as exc:
            state = 'off at its BMC' if self.verified else 'said to be off (fenced=true)'
            raise self._refuse('forced_down', 'cannot set forced_down: %s' % exc,
                               'refusing to evacuate %s: setting forced_down failed (%s). The host is %s; run again '
                               'once the services API answers' % (host, exc, state), FailureClass.UNREACHABLE)
        self._step('forced_down', 'done', 'forced_down set on the compute service of %s' % host)

    def _disable(self, svc):
        host = self.host
        after = self.service_after
        if svc.get('status') == 'disabled':
            self._step('disable', 'ok', 'already disabled (%s)' % (svc.get('disabled_reason') or 'no reason given'))
        else:
            reason = self.disabled_reason or evacuation_reason(self.wall())
            after.update(status='disabled', disabled_reason=reason)
            if self.check_mode:
                self._step('disable', 'would', 'would disable the compute service of %s (%s)' % (host, reason))
            else:
                try:
                    self.nova.set_service_status(svc['id'], False, reason)
                except Exception as exc:
                    raise self._refuse('disable', 'cannot disable: %s' % exc,
                                       'refusing to evacuate %s: disabling its compute service failed (%s); forced_down '
                                       'is set. Run again once the services API answers' % (host, exc),
                                       FailureClass.UNREACHABLE)
                self._step('disable', 'done', 'disabled (%s)' % reason)
        if self.check_mode:
            return
        # Our own changes moved updated_at: later ones mean someone (nova-compute) wrote again.
        services = self._services('forced_down')
        now = services.get(host) or {}
        if not now.get('forced_down'):
            raise self._refuse('forced_down', 'forced_down reads false after it was set',
                               'refusing to evacuate %s: its compute service does not read forced_down after it was '
                               'set; run again' % host)
        self._baseline = now.get('updated_at')
        self.service_after = service_view(now)

    def baseline(self):
        """The service's updated_at read after our own changes (what recheck compares with)."""
        return self._baseline

    def adopt(self, fencing):
        """Take over the fencing a killed run established (its journal's ``fencing``), for recheck.

        ``fencing`` holds ``fencing`` ('verified' or 'asserted'), ``baseline`` (updated_at after
        that run's changes) and ``service``. Nothing is changed: the caller re-checks the host
        with :meth:`recheck` before it evacuates anything.
        """
        self._prepared = True
        self._baseline = fencing.get('baseline')
        self.verified = fencing.get('fencing') in ('verified', 'would be verified')
        self.service_before = self.service_after = fencing.get('service')
        self._step('resume', 'ok', 'fencing taken over from the interrupted run (%s, updated_at %s); re-checked '
                   'before each evacuation' % (fencing.get('fencing'), self._baseline))

    # -- (e) before each evacuation -------------------------------------------------------
    def recheck(self, host=None):
        """None while ``host`` is still fenced, else why it is not: evacuate nothing more then.

        Still fenced: forced_down, Nova reads it down, no report since it was fenced (its
        updated_at is the one read after our own changes, or older than service_down_time), and
        with a fence driver the BMC reads off. In check mode only the report is checked.
        """
        host = host or self.host
        if host != self.host:
            return 'host %s is not the fenced host %s' % (host, self.host)
        if not self._prepared:
            return 'the fencing sequence has not run for %s' % host
        try:
            services = self.nova.compute_services()
        except Exception as exc:
            return 'cannot re-check %s: cannot list nova-compute services: %s' % (host, exc)
        svc = services.get(host)
        if svc is None:
            return 'the compute service of %s is gone' % host
        if not self.check_mode:
            if not svc.get('forced_down'):
                return 'forced_down was cleared on %s after it was fenced: the host may be back' % host
            if svc.get('updated_at') != self._baseline:
                try:
                    low = heartbeat_age(host, services, self.wall())[0]
                except ValueError as exc:
                    return 'cannot judge the heartbeat of %s: %s' % (host, exc)
                if low is not None and low < self.service_down_time:
                    return ('%s reported again after it was fenced (updated_at %s, %s): nova-compute may be '
                            'running there' % (host, svc.get('updated_at'), _age_text(low)))
        else:
            try:
                low = heartbeat_age(host, services, self.wall())[0]
            except ValueError as exc:
                return 'cannot judge the heartbeat of %s: %s' % (host, exc)
            if (svc.get('state') == 'up' and not svc.get('forced_down')) or (
                    low is not None and low < self.service_down_time):
                return '%s reported again (updated_at %s): nova-compute may be running there' % (
                    host, svc.get('updated_at'))
        if self.fence is not None and not self.check_mode:
            try:
                state = self.fence.power_state()
            except FenceError as exc:
                return 'cannot read the BMC of %s: %s' % (host, exc)
            if state != 'off':
                return 'the BMC of %s reads %s: the host has power again' % (host, state)
        return None


# -- what goes first, and where ---------------------------------------------------------------

def is_ha_enabled(server):
    """Masakari's flag: metadata HA_Enabled=True (any case)."""
    value = (server.get('metadata') or {}).get(HA_KEY)
    return str(value).strip().lower() in _TRUE if value is not None else False


def instance_priority(server, priority_key=PRIORITY_KEY):
    """(priority, note): the integer under ``priority_key`` (true/yes count 1), 0 when unset or unreadable."""
    value = (server.get('metadata') or {}).get(priority_key) if priority_key else None
    if value is None or str(value).strip() == '':
        return 0, None
    text = str(value).strip()
    if text.lower() in _TRUE:
        return 1, None
    try:
        return int(text), None
    except ValueError:
        return 0, '%s (%s): metadata %s=%r is not a whole number; taken as 0' % (
            server.get('name'), server.get('id'), priority_key, value)


def evacuation_order(servers, priority_key=PRIORITY_KEY):
    """(ordered, notes): [(server, wave)], higher priority first, then HA_Enabled=True, then by name.

    Each distinct (priority, HA) group gets its own wave, so a group is evacuated before the
    next one starts, whatever the parallelism.
    """
    notes = []
    keyed = []
    for server in servers:
        prio, note = instance_priority(server, priority_key)
        if note:
            notes.append(note)
        ha = is_ha_enabled(server)
        keyed.append(((-prio, not ha, server.get('name') or '', server.get('id') or ''), (prio, ha), server))
    keyed.sort(key=lambda k: k[0])
    ordered, groups = [], []
    for _key, group, server in keyed:
        if not groups or groups[-1] != group:
            groups.append(group)
        ordered.append((server, len(groups)))
    return ordered, notes


_NEEDS = (('VCPU', 'vcpus'), ('MEMORY_MB', 'memory_mb'), ('DISK_GB', 'disk_gb'))


def reserved_destinations(servers, reserved_hosts, services, room, failed_host, needs=None):
    """({instance id: reserved host or None}, notes): first fit, in the order given.

    ``room`` maps each reserved host to its free capacity per resource class, as
    ``_nova.Nova.host_room`` gives it; ``needs`` optionally maps an instance id to what it holds
    (``_nova.Nova.instance_resources``), else its flavor counts. An instance that fits no
    reserved host gets None (the scheduler picks). A reserved host that is disabled or down is
    not used, with a note; an unknown one, or the failed host itself, is an error.
    """
    notes = []
    usable = []
    for host in reserved_hosts or ():
        svc = services.get(host)
        if svc is None:
            raise LevellerError('reserved_hosts: %s runs no nova-compute service; give service host names as in '
                                'openstack compute service list' % host)
        if host == failed_host:
            raise LevellerError('reserved_hosts: %s is the failed host itself; remove it' % host)
        if svc.get('state') != 'up' or svc.get('forced_down'):
            notes.append('reserved host %s is down: not used' % host)
        elif svc.get('status') != 'enabled':
            notes.append('reserved host %s is disabled (%s): not used, as the scheduler refuses a disabled host; '
                         'enable it before the recovery to use it' % (host, svc.get('disabled_reason') or 'no reason'))
        elif host not in (room or {}):
            notes.append('reserved host %s: its free capacity is unknown: not used' % host)
        else:
            usable.append(host)
    free = dict((h, dict((rc, (v or {}).get('free', 0)) for rc, v in room[h].items())) for h in usable)
    max_unit = dict((h, dict((rc, (v or {}).get('max_unit')) for rc, v in room[h].items())) for h in usable)
    chosen = {}
    for server in servers:
        if needs and server.get('id') in needs:
            need = dict((rc, needs[server['id']].get(rc, 0) or 0) for rc, _k in _NEEDS)
        else:
            flavor = server.get('flavor') or {}
            need = dict((rc, flavor.get(key) or 0) for rc, key in _NEEDS)
        target = None
        for host in usable:
            fits = all(free[host].get(rc, 0) >= amount and (max_unit[host].get(rc) is None or amount <= max_unit[host][rc])
                       for rc, amount in need.items() if amount)
            if fits:
                target = host
                for rc, amount in need.items():
                    if amount:
                        free[host][rc] = free[host].get(rc, 0) - amount
                break
        chosen[server.get('id')] = target
    return chosen, notes


def home_metadata(server, host):
    """Metadata to set on an instance evacuated from ``host``: its home (``leveller:home``).

    Empty when the instance already records a home: the first home is the one to go back to.
    """
    if (server.get('metadata') or {}).get(HOME_KEY):
        return {}
    return {HOME_KEY: host}


# -- coming back -------------------------------------------------------------------------------

def reenable(nova, host, service_down_time=SERVICE_DOWN_TIME, force_enable=False, our_reasons=(),
             check_mode=False, wall=None):
    """Bring ``host`` back into service (state=enabled); returns a summary, or RecoveryRefused.

    The rule for a host that was evacuated (its service is forced down, or disabled with our
    evacuation reason, or Nova keeps evacuation records from it awaiting clean-up):

    1. no evacuation record from the host is still ``accepted``, ``pre-migrating`` or ``done``
       (records of instances deleted since are set aside). Only a starting nova-compute on the
       source destroys the local copies of evacuated instances and then marks each record
       ``completed``, so this proves that nova-compute started after every evacuation and that
       no old copy is left; a nova-compute that was only cut off and reconnects marks nothing;
    2. the service reports now: its heartbeat is younger than ``service_down_time``;
    3. that report came after the clean-up: ``updated_at`` is later than the newest
       ``completed`` record's ``updated_at`` (both are written on the cloud's clock).

    Until then forced_down stays set. When no evacuation is on record, 1 and 3 have nothing to
    check (no instance has a second copy to clean up) and only 2 applies.

    A host disabled with a reason that is not ours (see :func:`is_our_reason`) is re-enabled
    only with ``force_enable``. A half state (forced_down cleared, the service still disabled
    with our evacuation reason) is reported and completed.
    """
    wall = wall or time.time
    steps = []

    def step(name, result, detail):
        steps.append(dict(step=name, result=result, detail=detail))

    def refuse(name, detail, message, failure=FailureClass.INCONSISTENT, half_state=False):
        step(name, 'refused', detail)
        return RecoveryRefused(message, failure, steps, half_state)

    try:
        services = nova.compute_services()
    except Exception as exc:
        raise refuse('service', 'cannot list nova-compute services: %s' % exc,
                     'cannot enable %s: cannot list nova-compute services: %s' % (host, exc), FailureClass.UNREACHABLE)
    svc = services.get(host)
    if svc is None:
        raise refuse('service', 'no nova-compute service on %s' % host,
                     'unknown host %r: not a nova-compute service host of this cloud (known: %s)'
                     % (host, ', '.join(sorted(services)) or 'none'), FailureClass.CONFIGURATION)
    before = service_view(svc)
    after = dict(before)
    reason = svc.get('disabled_reason')
    disabled = svc.get('status') != 'enabled'
    forced = bool(svc.get('forced_down'))

    try:
        records = list(nova.evacuations_from(host))
    except Exception as exc:
        raise refuse('evacuations', 'cannot list evacuation records: %s' % exc,
                     'cannot enable %s: cannot list the evacuation records from it: %s' % (host, exc),
                     FailureClass.UNREACHABLE)
    pending, gone = [], []
    for rec in records:
        if rec.get('status') in PENDING_CLEANUP:
            try:
                exists = nova.get_server(rec.get('instance')) is not None
            except Exception as exc:
                raise refuse('evacuations', 'cannot read instance %s: %s' % (rec.get('instance'), exc),
                             'cannot enable %s: cannot read instance %s of an evacuation record: %s'
                             % (host, rec.get('instance'), exc), FailureClass.UNREACHABLE)
            (pending if exists else gone).append(rec)
    completed = [r for r in records if r.get('status') == 'completed']
    evacuated = forced or is_evacuation_reason(reason) or bool(pending)
    step('evacuations', 'ok', '%d evacuation record(s) from %s: %d awaiting clean-up, %d completed%s' % (
        len(records), host, len(pending), len(completed),
        ', %d of deleted instance(s) set aside' % len(gone) if gone else ''))

    if not disabled and not forced:
        if pending:
            step('restarted', 'warning', 'the service is already enabled while %d evacuation record(s) await '
                 'clean-up by nova-compute on %s' % (len(pending), host))
        return dict(changed=False, host=host, half_state=False, steps=steps,
                    service={'before': before, 'after': after}, msg='%s already enabled' % host)

    if disabled and not is_our_reason(reason, our_reasons):
        if not force_enable:
            raise refuse('reason', 'disabled by someone else: %s' % (reason or 'no reason given'),
                         'refusing to enable %s: its compute service was disabled by someone else (%s), not by this '
                         'collection. Enable it with force_enable=true once that reason no longer holds'
                         % (host, repr(reason) if reason else 'no reason given'), FailureClass.CONFIGURATION)
        step('reason', 'overridden', 'disabled by someone else (%s); enabled anyway: force_enable=true'
             % (reason or 'no reason given'))

    half_state = disabled and not forced and is_evacuation_reason(reason)
    if half_state:
        step('half_state', 'found', 'an earlier run cleared forced_down on %s but left its service disabled; '
             'completing it' % host)

    if evacuated:
        if pending:
            names = ', '.join('%s (%s)' % (r.get('instance'), r.get('status')) for r in pending[:5])
            more = ' and %d more' % (len(pending) - 5) if len(pending) > 5 else ''
            raise refuse('restarted', '%d evacuation record(s) await clean-up: %s%s' % (len(pending), names, more),
                         'refusing to enable %s: its nova-compute has not started since the evacuation: %d evacuation '
                         'record(s) still await its clean-up (%s%s). Nova deletes the evacuated guests from %s only '
                         'when nova-compute starts there. Power the host on, start nova-compute, wait for it to report, '
                         'then run state=enabled again; %s' % (host, len(pending), names, more, host,
                                                               'forced_down stays set' if forced else 'it stays disabled'),
                         half_state=half_state)
        try:
            low, high = heartbeat_age(host, services, wall())
        except ValueError as exc:
            raise refuse('restarted', str(exc), 'refusing to enable %s: cannot judge its heartbeat (%s)' % (host, exc),
                         half_state=half_state)
        if high is None or high >= service_down_time:
            raise refuse('restarted', 'last report %s (updated_at %s), not within service_down_time %s s'
                         % (_age_text(high), svc.get('updated_at'), service_down_time),
                         'refusing to enable %s: its nova-compute does not report (last report %s, updated_at %s). Start '
                         'nova-compute on %s, wait until it reports, then run state=enabled again; %s'
                         % (host, _age_text(high), svc.get('updated_at'), host,
                            'forced_down stays set' if forced else 'it stays disabled'), half_state=half_state)
        if completed:
            try:
                newest = max(completed, key=lambda r: parse_nova_time(r.get('updated_at')) or 0)
                cleaned = parse_nova_time(newest.get('updated_at'))
            except ValueError as exc:
                raise refuse('restarted', str(exc), 'refusing to enable %s: cannot read the time of its evacuation '
                             'records (%s)' % (host, exc), half_state=half_state)
            if cleaned is not None and parse_nova_time(svc.get('updated_at')) <= cleaned:
                raise refuse('restarted', 'no report since the clean-up at %s' % newest.get('updated_at'),
                             'refusing to enable %s: it has not reported since the clean-up of its evacuated guests (%s); '
                             'wait for its next report and run again' % (host, newest.get('updated_at')),
                             half_state=half_state)
            step('restarted', 'ok', 'nova-compute started after the evacuation: %d record(s) completed by its '
                 'clean-up (newest %s); last report %s' % (len(completed), newest.get('updated_at'), _age_text(low)))
        else:
            step('restarted', 'ok', 'no evacuation to clean up; nova-compute reports (last report %s)' % _age_text(low))

    changed = False
    cleared_now = False
    if forced:
        changed = True
        after.update(forced_down=False)
        if check_mode:
            step('forced_down', 'would', 'would clear forced_down')
        else:
            try:
                nova.set_forced_down(svc['id'], False)
            except Exception as exc:
                raise refuse('forced_down', 'cannot clear forced_down: %s' % exc,
                             'cannot clear forced_down on %s: %s; nothing was changed, run state=enabled again'
                             % (host, exc), FailureClass.UNREACHABLE)
            cleared_now = True
            step('forced_down', 'done', 'forced_down cleared')
    if disabled:
        changed = True
        after.update(status='enabled', disabled_reason=None)
        if check_mode:
            step('enable', 'would', 'would enable the compute service')
        else:
            try:
                nova.set_service_status(svc['id'], True)
            except Exception as exc:
                half = cleared_now or half_state
                raise refuse('enable', 'cannot enable: %s' % exc,
                             'cannot enable %s: %s.%s Run state=enabled again to complete it'
                             % (host, exc, ' forced_down is cleared but the service stays disabled (a half state).'
                                if half else ''), FailureClass.UNREACHABLE, half_state=half)
            step('enable', 'done', 'compute service enabled')
    verb = 'would be enabled' if check_mode else 'enabled'
    return dict(changed=changed, host=host, half_state=half_state, steps=steps,
                service={'before': before, 'after': after},
                msg='%s %s%s' % (host, verb, ' (completing an earlier half-done enable)' if half_state else ''))
