# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decision core of libvirt scaling groups: a pure function of the group and its metrics.

``decide`` takes the group's spec, its members (read back from each domain's libvirt metadata),
their metric samples and the hosts' free room, and returns one step: what to create, what to
remove, and one sentence saying why. Nothing here talks to libvirt; members are iterated in
index order and hosts in the spec's order, so the same input always gives the same decision.

What the actuator owes the decision: it stamps ``last_action_at`` on every member left after
any action (the cooldown is measured from the newest stamp), and for a ``replace`` it defines
the new members before removing the old unless ``remove_first`` is set (no spare address).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import dataclasses
import math
import re
import time
from typing import Dict, Optional, Tuple

SCALING_NS = 'urn:cloudops-leveller:scaling:1'
SCALING_PREFIX = 'leveller'
METRICS = ('cpu', 'memory', 'disk_io')
PLACEMENTS = ('round_robin', 'most_free', 'fill_first')
SCALE_IN_ORDERS = ('newest', 'oldest')
ACTIONS = ('none', 'scale_out', 'scale_in', 'replace', 'heal')
ISO_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
# 56 characters leave room for '-' and a six-digit index inside a 63-character DNS label.
NAME_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,54}[a-z0-9])?$')
INDEX_RE = re.compile(r'^[1-9][0-9]*$')


class ScalingConfigError(ValueError):
    """A group option is wrong; ``str()`` names the option and the fix."""

    def __init__(self, option, message):
        self.option = option
        self.message = message
        super(ScalingConfigError, self).__init__('%s: %s' % (option, message))


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """A checked group definition; build it with validate_spec."""
    name: str
    hosts: Tuple[str, ...]
    min_size: int
    max_size: int
    increment: int
    cooldown: int
    window: int
    thresholds: Dict[str, Dict[str, float]]
    placement: str
    scale_in_order: str
    max_unavailable: int
    template_version: str
    addresses: Optional[int]
    vcpus: int
    memory_mb: int


@dataclasses.dataclass(frozen=True)
class Member:
    """A domain of the group, as its libvirt metadata and state tell."""
    name: str
    host: str
    index: int
    created_at: float
    template_version: str
    address: Optional[str] = None
    running: bool = True
    last_action_at: Optional[float] = None


@dataclasses.dataclass
class Decision:
    """One step: what to create and remove now, and why."""
    action: str
    reason: str
    size_before: int
    size_after: int
    create: list = dataclasses.field(default_factory=list)
    remove: list = dataclasses.field(default_factory=list)
    waiting: Optional[int] = None
    # Only a replacement without a spare address sets it: the old members must go before the new come.
    remove_first: bool = False
    metrics: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """The decision as plain data (module results, check mode)."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- the spec

def _whole(option, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise ScalingConfigError(option, 'expected a whole number, got %r' % (value,))
    if value < minimum:
        raise ScalingConfigError(option, '%d is below %d: set %s to %d or more' % (value, minimum, option, minimum))
    return int(value)


def _choice(choices):
    def check(option, value):
        if value not in choices:
            raise ScalingConfigError(option, 'unknown value %r: use one of %s' % (value, ', '.join(choices)))
        return value
    return check


def _name(option, value):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ScalingConfigError(option, '%r cannot prefix domain and host names: use 1 to 56 lowercase letters, '
                                 'digits and -, starting and ending with a letter or digit' % (value,))
    return value


def _hosts(option, value):
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
            isinstance(host, str) and host for host in value):
        raise ScalingConfigError(option, 'expected a list of libvirt host names or URIs, got %r' % (value,))
    if not value:
        raise ScalingConfigError(option, 'the list is empty: list at least one libvirt host')
    seen = set()
    for host in value:
        if host in seen:
            raise ScalingConfigError(option, '%s is listed twice: list each host once' % host)
        seen.add(host)
    return tuple(value)


def _thresholds(option, value):
    if not isinstance(value, dict):
        raise ScalingConfigError(option, 'expected a mapping of cpu, memory and/or disk_io, got %r' % (value,))
    result = {}
    for metric in sorted(value):
        if metric not in METRICS:
            raise ScalingConfigError('%s.%s' % (option, metric), 'unknown metric: use cpu, memory or disk_io')
        band = value[metric]
        if band is None:
            continue
        where = '%s.%s' % (option, metric)
        if not isinstance(band, dict):
            raise ScalingConfigError(where, 'expected a mapping with scale_out and scale_in, got %r' % (band,))
        for key in sorted(band):
            if key not in ('scale_out', 'scale_in'):
                raise ScalingConfigError('%s.%s' % (where, key), 'unknown key: use scale_out and scale_in')
        top = 1.0 if metric != 'disk_io' else None
        unit = 'a fraction from 0 to 1' if top else 'bytes per second, 0 or more'
        checked = {}
        for key in ('scale_out', 'scale_in'):
            number = band.get(key)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
                    or number < 0 or (top is not None and number > top):
                raise ScalingConfigError('%s.%s' % (where, key), 'expected %s, got %r' % (unit, number))
            checked[key] = float(number)
        if checked['scale_in'] >= checked['scale_out']:
            raise ScalingConfigError(where + '.scale_in', '%s is not below scale_out %s: the group would flap; '
                                     'set scale_in lower than scale_out' % (band['scale_in'], band['scale_out']))
        result[metric] = checked
    if not result:
        raise ScalingConfigError(option, 'no threshold set: give at least one of cpu, memory, disk_io '
                                 'with scale_out and scale_in')
    return result


def _template(option, value):
    if not isinstance(value, str) or not value or any(ord(char) < 32 for char in value):
        raise ScalingConfigError(option, 'expected a non-empty version string (the template digest), got %r' % (value,))
    return value


_REQUIRED = object()
# option: (default, check), in the order they are checked.
OPTIONS = (
    ('name', _REQUIRED, _name),
    ('hosts', _REQUIRED, _hosts),
    ('min_size', 1, lambda o, v: _whole(o, v, 0)),
    ('max_size', _REQUIRED, lambda o, v: _whole(o, v, 0)),
    ('increment', 1, lambda o, v: _whole(o, v, 1)),
    ('cooldown', 300, lambda o, v: _whole(o, v, 0)),
    ('window', 300, lambda o, v: _whole(o, v, 1)),
    ('thresholds', _REQUIRED, _thresholds),
    ('placement', 'round_robin', _choice(PLACEMENTS)),
    ('scale_in_order', 'oldest', _choice(SCALE_IN_ORDERS)),
    ('max_unavailable', 1, lambda o, v: _whole(o, v, 1)),
    ('template_version', _REQUIRED, _template),
    ('addresses', None, lambda o, v: None if v is None else _whole(o, v, 0)),
    ('vcpus', _REQUIRED, lambda o, v: _whole(o, v, 1)),
    ('memory_mb', _REQUIRED, lambda o, v: _whole(o, v, 1)),
)


def validate_spec(raw):
    """A GroupSpec from a dict of options (None means the default); ScalingConfigError otherwise."""
    if not isinstance(raw, dict):
        raise ScalingConfigError('group', 'expected a mapping of options, got %r' % (raw,))
    known = [option for option, default, check in OPTIONS]
    unknown = sorted(key for key in raw if key not in known)
    if unknown:
        raise ScalingConfigError(unknown[0], 'unknown option: use one of %s' % ', '.join(sorted(known)))
    values = {}
    for option, default, check in OPTIONS:
        value = raw.get(option)
        if value is None and default is _REQUIRED:
            raise ScalingConfigError(option, 'required: set %s' % option)
        value = default if value is None else value
        values[option] = check(option, value)
    if values['min_size'] > values['max_size']:
        raise ScalingConfigError('min_size', '%d is above max_size %d: lower min_size or raise max_size'
                                 % (values['min_size'], values['max_size']))
    if values['addresses'] is not None and values['max_size'] > values['addresses']:
        raise ScalingConfigError('max_size', '%d members need more than the %d addresses available: lower max_size '
                                 'or widen the address range' % (values['max_size'], values['addresses']))
    return GroupSpec(**values)


# ---------------------------------------------------------------- metrics

def _usable(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def group_metrics(spec, members, metrics, now):
    """Per metric, the mean over members of each member's mean in [now - window, now]; None if unknown."""
    start = now - spec.window
    result = {}
    for position, metric in enumerate(METRICS, 1):
        means = []
        for member in sorted(members, key=lambda m: (m.index, m.name)):
            values = [sample[position] for sample in (metrics.get(member.name) or ())
                      if _usable(sample[0]) and start <= sample[0] <= now and _usable(sample[position])]
            if values:
                means.append(math.fsum(values) / len(values))
        result[metric] = math.fsum(means) / len(means) if means else None
    return result


def _show(metric, value):
    if metric != 'disk_io':
        return '%.2f' % value
    for unit, size in (('GiB/s', 2 ** 30), ('MiB/s', 2 ** 20), ('KiB/s', 2 ** 10)):
        if value >= size:
            return '%.1f %s' % (value / size, unit)
    return '%d B/s' % round(value)


def _judge(spec, values):
    """('scale_out' | 'scale_in' | 'hold', the numbers that say so)."""
    above, below, between, unknown = [], [], [], []
    for metric in METRICS:
        band = spec.thresholds.get(metric)
        if band is None:
            continue
        value = values.get(metric)
        out, low = _show(metric, band['scale_out']), _show(metric, band['scale_in'])
        if value is None:
            unknown.append(metric)
        elif value > band['scale_out']:
            above.append('%s %s > scale_out %s' % (metric, _show(metric, value), out))
        elif value < band['scale_in']:
            below.append('%s %s < scale_in %s' % (metric, _show(metric, value), low))
        else:
            between.append('%s %s within scale_in %s and scale_out %s' % (metric, _show(metric, value), low, out))
    window = ' over %d s' % spec.window
    note = ' (%s: no sample)' % ', '.join(unknown) if unknown else ''
    if above:
        return 'scale_out', ', '.join(above) + window
    if not below and not between:
        return 'hold', 'no %s sample in the last %d s' % (' or '.join(unknown), spec.window)
    if not between:
        return 'scale_in', ', '.join(below) + window + note
    return 'hold', ', '.join(between + below) + window + note


# ---------------------------------------------------------------- members, names and hosts

def removal_order(spec, members):
    """Members in the order scale-in removes them: newest (created_at, then index) or oldest first."""
    newest = sorted(members, key=lambda m: (-m.created_at, -m.index, m.name))
    return newest if spec.scale_in_order == 'newest' else newest[::-1]


def _cooldown_left(spec, members, now):
    stamps = [m.last_action_at for m in members if m.last_action_at is not None]
    if not stamps:
        return None
    left = spec.cooldown - (now - max(stamps))
    return int(math.ceil(left)) if left > 0 else None


def _new_names(spec, members, count):
    # Indices of members about to be removed stay taken: in a replacement they still exist
    # while the new ones are defined.
    used = set(m.index for m in members)
    names = set(m.name for m in members)
    result, index = [], 1
    while len(result) < count:
        name = '%s-%d' % (spec.name, index)
        if index not in used and name not in names:
            result.append((name, index))
        index += 1
    return result


def _figure(info, key):
    value = info.get(key)
    return value if _usable(value) else 0


def _place(spec, count, members, leaving, hosts):
    """Up to count hosts for new members, one per member in order; fewer when no up host has room."""
    order = dict((host, position) for position, host in enumerate(spec.hosts))
    room = {}
    for host in spec.hosts:
        info = hosts.get(host) or {}
        if info.get('up') is True:
            room[host] = [_figure(info, 'free_vcpus'), _figure(info, 'free_memory_mb')]
    # round_robin balances the group as it will be after this step, so leaving members do not count.
    counts = dict((host, 0) for host in spec.hosts)
    for member in members:
        if member.host in counts and member.name not in leaving:
            counts[member.host] += 1

    def fewest(host):
        return (counts[host], order[host])

    def most_free(host):
        return (-room[host][1], -room[host][0], order[host])

    chosen = []
    while len(chosen) < count:
        fits = [host for host in spec.hosts
                if host in room and room[host][0] >= spec.vcpus and room[host][1] >= spec.memory_mb]
        if not fits:
            break
        if spec.placement == 'round_robin':
            host = min(fits, key=fewest)
        elif spec.placement == 'most_free':
            host = min(fits, key=most_free)
        else:
            host = fits[0]
        room[host][0] -= spec.vcpus
        room[host][1] -= spec.memory_mb
        counts[host] += 1
        chosen.append(host)
    return chosen


def _no_room(spec):
    return 'no up host has room for a member of %d vCPUs and %d MiB' % (spec.vcpus, spec.memory_mb)


# ---------------------------------------------------------------- the decision

def _grow(spec, members, hosts, count, action, why, values):
    size = len(members)
    placed = _place(spec, count, members, (), hosts)
    if not placed:
        return Decision('none', '%s; %s; holding at %d members' % (why, _no_room(spec), size),
                        size, size, metrics=values)
    create = [{'name': name, 'host': host, 'index': index}
              for (name, index), host in zip(_new_names(spec, members, len(placed)), placed)]
    short = '' if len(placed) == count else ' (placed %d of %d: %s)' % (len(placed), count, _no_room(spec))
    return Decision(action, '%s; %d -> %d members%s' % (why, size, size + len(create), short),
                    size, size + len(create), create=create, metrics=values)


def _shrink(spec, members, count, why, values):
    size = len(members)
    remove = [m.name for m in removal_order(spec, members)[:count]]
    return Decision('scale_in', '%s; %d -> %d members (%s first)' % (why, size, size - count, spec.scale_in_order),
                    size, size - count, remove=remove, metrics=values)


def _replace(spec, members, outdated, hosts, why, values):
    """One rolling step: at most max_unavailable outdated members out, as many new ones in."""
    size = len(members)
    running = sum(1 for m in members if m.running)
    # Members created by this step are not counted as running: if none of them boots, the group
    # still keeps size - max_unavailable running members.
    budget = running - (size - spec.max_unavailable)
    order = removal_order(spec, outdated)
    chosen = []
    # Stopped outdated members are unavailable already: replacing them first costs nothing.
    for member in [m for m in order if not m.running] + [m for m in order if m.running]:
        if len(chosen) == spec.max_unavailable or (member.running and budget <= 0):
            break
        budget -= 1 if member.running else 0
        chosen.append(member)
    state = '%d of %d members on a template other than %s, %d running' % (
        len(outdated), size, spec.template_version, running)
    if not chosen:
        return Decision('none', '%s; %s; replacement waits: removing one would leave fewer than %d running '
                        '(size - max_unavailable)' % (why, state, size - spec.max_unavailable),
                        size, size, metrics=values)
    leaving = set(m.name for m in chosen)
    placed = _place(spec, len(chosen), members, leaving, hosts)
    if not placed:
        return Decision('none', '%s; %s; replacement waits: %s' % (why, state, _no_room(spec)),
                        size, size, metrics=values)
    chosen = chosen[:len(placed)]
    create = [{'name': name, 'host': host, 'index': index}
              for (name, index), host in zip(_new_names(spec, members, len(placed)), placed)]
    # Surge needs an address per new member while the old ones still hold theirs.
    remove_first = spec.addresses is not None and size + len(create) > spec.addresses
    how = ('removing first: no spare address among %d' % spec.addresses) if remove_first else 'creating first'
    return Decision('replace', '%s; %s; replacing %s with %s (%s, max_unavailable %d)' % (
        why, state, ', '.join(m.name for m in chosen), ', '.join(c['name'] for c in create), how,
        spec.max_unavailable), size, size, create=create, remove=[m.name for m in chosen],
        remove_first=remove_first, metrics=values)


def decide(spec, members, metrics, hosts, now):
    """One step for the group now: heal, scale out or in, replace, or nothing; always with the reason."""
    members = sorted(members, key=lambda m: (m.index, m.name))
    metrics = metrics or {}
    hosts = hosts or {}
    size = len(members)
    values = group_metrics(spec, members, metrics, now)
    # The bounds hold whatever the cooldown says: they are the operator's, not the metrics'.
    if size < spec.min_size:
        return _grow(spec, members, hosts, spec.min_size - size, 'heal',
                     '%d members, below min_size %d' % (size, spec.min_size), values)
    if size > spec.max_size:
        return _shrink(spec, members, size - spec.max_size,
                       '%d members, above max_size %d' % (size, spec.max_size), values)
    wanted, why = _judge(spec, values)
    outdated = [m for m in members if m.template_version != spec.template_version]
    left = _cooldown_left(spec, members, now)
    if left is not None:
        pending = why if wanted != 'hold' else ('%d members to replace' % len(outdated) if outdated else why)
        return Decision('none', 'cooldown: %d s left of %d s since the last action; then: %s' % (
            left, spec.cooldown, pending), size, size, waiting=left, metrics=values)
    if wanted == 'scale_out' and size < spec.max_size:
        return _grow(spec, members, hosts, min(spec.increment, spec.max_size - size), 'scale_out', why, values)
    if wanted == 'scale_in' and size > spec.min_size:
        return _shrink(spec, members, min(spec.increment, size - spec.min_size), why, values)
    if wanted == 'scale_out':
        why += ', but the group is at max_size %d' % spec.max_size
    elif wanted == 'scale_in':
        why += ', but the group is at min_size %d' % spec.min_size
    if outdated:
        return _replace(spec, members, outdated, hosts, why, values)
    return Decision('none', '%s; holding at %d members' % (why, size), size, size, metrics=values)


# ---------------------------------------------------------------- libvirt metadata

def _iso(epoch):
    return time.strftime(ISO_FORMAT, time.gmtime(epoch))


def _epoch(text):
    return calendar.timegm(time.strptime(text, ISO_FORMAT))


def member_xml(group, member, volumes=()):
    """The metadata element recording one member, without its namespace prefix (times in whole seconds).

    ``volumes`` are (pool, volume name) pairs: what removing the member deletes, and nothing else.
    """
    from xml.sax.saxutils import quoteattr
    attributes = [('group', group), ('index', str(member.index)), ('created_at', _iso(member.created_at)),
                  ('template', member.template_version)]
    if member.address is not None:
        attributes.append(('address', member.address))
    if member.last_action_at is not None:
        attributes.append(('last_action_at', _iso(member.last_action_at)))
    opening = '<member %s' % ' '.join('%s=%s' % (key, quoteattr(value)) for key, value in attributes)
    if not volumes:
        return opening + '/>'
    return '%s>%s</member>' % (opening, ''.join('<volume pool=%s name=%s/>' % (quoteattr(pool), quoteattr(name))
                                                for pool, name in volumes))


def member_volumes(text):
    """The (pool, volume name) pairs a member record lists, in its order; () when none or unreadable."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(text or '')
    except ET.ParseError:
        return ()
    found = []
    for node in list(root):
        if node.tag in ('volume', '{%s}volume' % SCALING_NS) and node.get('pool') and node.get('name'):
            found.append((node.get('pool'), node.get('name')))
    return tuple(found)


def parse_member_xml(text, domain_name, host, running, group):
    """The Member a domain's metadata records, or None for another group's, a renamed or a damaged record."""
    import xml.etree.ElementTree as ET
    if not text:
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag not in ('member', '{%s}member' % SCALING_NS) or root.get('group') != group:
        return None
    raw_index, template, last = root.get('index') or '', root.get('template'), root.get('last_action_at')
    # A domain whose name does not match its record (a clone, a rename) is not taken for a member.
    if not INDEX_RE.match(raw_index) or not template or domain_name != '%s-%s' % (group, raw_index):
        return None
    try:
        created_at = _epoch(root.get('created_at') or '')
        last_action_at = _epoch(last) if last is not None else None
    except ValueError:
        return None
    return Member(name=domain_name, host=host, index=int(raw_index), created_at=created_at,
                  template_version=template, address=root.get('address') or None, running=bool(running),
                  last_action_at=last_action_at)
