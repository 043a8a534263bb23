# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scaling decision: properties on random groups, examples for the rules and the metadata record."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import dataclasses
import math

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling

NOW = 1800000000
HOSTS = ('h1', 'h2', 'h3', 'h4')


def raw_spec(**changes):
    raw = {
        'name': 'web', 'hosts': ['h1', 'h2'], 'min_size': 1, 'max_size': 4, 'increment': 1,
        'cooldown': 300, 'window': 300, 'placement': 'round_robin', 'scale_in_order': 'oldest',
        'max_unavailable': 1, 'template_version': 'v2', 'addresses': None, 'vcpus': 2, 'memory_mb': 2048,
        'thresholds': {'cpu': {'scale_out': 0.8, 'scale_in': 0.3}},
    }
    raw.update(changes)
    return raw


def spec(**changes):
    return _scaling.validate_spec(raw_spec(**changes))


def member(index, host='h1', created_at=None, template='v2', running=True, last_action_at=None, group='web'):
    return _scaling.Member(name='%s-%d' % (group, index), host=host, index=index,
                           created_at=NOW - 10000 + index if created_at is None else created_at,
                           template_version=template, address='10.0.0.%d' % index, running=running,
                           last_action_at=last_action_at)


def roomy(*names):
    return dict((name, {'up': True, 'free_vcpus': 64, 'free_memory_mb': 65536}) for name in names or HOSTS)


def load(members, cpu=None, memory=None, disk_io=None, at=NOW - 10):
    return dict((m.name, [(at, cpu, memory, disk_io)]) for m in members)


# ---------------------------------------------------------------- random groups

@st.composite
def scenarios(draw):
    hosts = list(HOSTS[:draw(st.integers(1, 4))])
    min_size = draw(st.integers(0, 3))
    max_size = draw(st.integers(min_size, 8))
    metrics = draw(st.lists(st.sampled_from(_scaling.METRICS), min_size=1, max_size=3, unique=True))
    thresholds = {}
    for metric in metrics:
        top = 1e8 if metric == 'disk_io' else 1.0
        low = draw(st.one_of(st.just(0.3), st.floats(0, 0.9))) * top
        high = draw(st.one_of(st.just(0.8), st.floats(low / top + 0.05, 1))) * top
        thresholds[metric] = {'scale_in': low, 'scale_out': max(high, low + top * 0.05)}
    raw = raw_spec(
        hosts=hosts, min_size=min_size, max_size=max_size, increment=draw(st.integers(1, 4)),
        cooldown=draw(st.integers(0, 600)), window=draw(st.integers(60, 600)), thresholds=thresholds,
        placement=draw(st.sampled_from(_scaling.PLACEMENTS)),
        scale_in_order=draw(st.sampled_from(_scaling.SCALE_IN_ORDERS)),
        max_unavailable=draw(st.integers(1, 3)), template_version=draw(st.sampled_from(['v1', 'v2'])),
        addresses=draw(st.one_of(st.none(), st.just(max_size), st.integers(max_size, max_size + 3))),
        vcpus=draw(st.integers(1, 4)), memory_mb=draw(st.integers(512, 4096)))
    group = _scaling.validate_spec(raw)
    # Mostly within the bounds, sometimes outside (heal, clamp).
    count = draw(st.one_of(st.integers(min_size, max_size), st.integers(min_size, max_size), st.integers(0, max_size + 2)))
    indices = draw(st.lists(st.integers(1, 16), min_size=count, max_size=count, unique=True))
    # Most draws are outside the cooldown, or nearly every group would be waiting.
    stamps = st.integers(NOW - 1000, NOW) if draw(st.integers(0, 3)) == 0 else st.none()
    members = [_scaling.Member(
        name='web-%d' % index, host=draw(st.sampled_from(hosts + ['gone'])), index=index,
        created_at=draw(st.integers(NOW - 5000, NOW - 1000)), template_version=draw(st.sampled_from(['v1', 'v2'])),
        running=draw(st.booleans()),
        last_action_at=draw(stamps)) for index in indices]
    # Mostly plainly low, middling or high loads, so every action is drawn often.
    fraction = st.one_of(st.sampled_from([0.02, 0.5, 0.97]), st.floats(0, 1))
    value = {'cpu': fraction, 'memory': fraction, 'disk_io': fraction.map(lambda f: f * 1e8)}
    samples = {}
    for item in members:
        samples[item.name] = draw(st.lists(st.tuples(
            st.integers(NOW - 400, NOW + 10), *[st.one_of(value[metric], value[metric], st.none()) for metric in _scaling.METRICS]),
            min_size=draw(st.sampled_from([1, 1, 1, 0])), max_size=4))
    hosts_state = {}
    for host in hosts:
        hosts_state[host] = {'up': draw(st.sampled_from([True, True, True, False])),
                             'free_vcpus': draw(st.sampled_from([32, 16, 8, 4, 3, 2, 1, 0])),
                             'free_memory_mb': draw(st.sampled_from([32768, 16384, 8192, 4096, 2048, 1024, 0]))}
    return group, members, samples, hosts_state


def cooldown_left(group, members):
    stamps = [m.last_action_at for m in members if m.last_action_at is not None]
    return bool(stamps) and NOW - max(stamps) < group.cooldown


def reference_values(group, members, samples):
    """The group's metrics computed the long way: mean over members of their means in the window."""
    result = {}
    for position, metric in enumerate(_scaling.METRICS, 1):
        means = []
        for item in members:
            values = [sample[position] for sample in samples.get(item.name, [])
                      if NOW - group.window <= sample[0] <= NOW and sample[position] is not None]
            if values:
                means.append(sum(values) / len(values))
        result[metric] = sum(means) / len(means) if means else None
    return result


# Each rule takes the drawn group and the decision made on it; one draw checks them all.

def rule_size_stays_within_bounds(group, members, samples, hosts, decision):
    assert decision.action in _scaling.ACTIONS
    assert decision.size_before == len(members)
    assert decision.size_after == len(members) + len(decision.create) - len(decision.remove)
    assert (decision.action == 'none') == (not decision.create and not decision.remove)
    if decision.size_after < group.min_size:
        # Only a heal that cannot place every member stays below, and it says why.
        assert len(members) < group.min_size and 'no up host has room' in decision.reason
    else:
        assert decision.size_after <= group.max_size
    if len(members) < group.min_size:
        assert decision.action in ('heal', 'none') and not decision.remove
    if len(members) > group.max_size:
        assert decision.action == 'scale_in' and decision.size_after == group.max_size


def rule_increment_limits_scaling(group, members, samples, hosts, decision):
    if decision.action == 'scale_out':
        assert 1 <= len(decision.create) <= group.increment and not decision.remove
        assert group.min_size <= len(members) < group.max_size
    if decision.action == 'scale_in' and len(members) <= group.max_size:
        assert 1 <= len(decision.remove) <= group.increment and not decision.create


def rule_thresholds_judged_over_the_window(group, members, samples, hosts, decision):
    expected = reference_values(group, members, samples)
    for metric in _scaling.METRICS:
        if expected[metric] is None:
            assert decision.metrics[metric] is None
        else:
            assert math.isclose(decision.metrics[metric], expected[metric], rel_tol=1e-9, abs_tol=1e-9)
    known = [(expected[metric], band) for metric, band in group.thresholds.items() if expected[metric] is not None]
    hot = any(value > band['scale_out'] for value, band in known)
    idle = bool(known) and all(value < band['scale_in'] for value, band in known)
    in_bounds = group.min_size <= len(members) <= group.max_size
    if in_bounds and decision.action == 'scale_out':
        assert hot
    if in_bounds and decision.action == 'scale_in':
        assert idle and not hot
    if in_bounds and not cooldown_left(group, members):
        if hot and len(members) < group.max_size:
            assert decision.action == 'scale_out' or 'no up host has room' in decision.reason
        if idle and len(members) > group.min_size:
            assert decision.action == 'scale_in'


def rule_scale_in_removes_in_the_declared_order_and_never_below_min(group, members, samples, hosts, decision):
    if decision.action != 'scale_in':
        return
    assert decision.size_after >= group.min_size
    newest = sorted(members, key=lambda m: (m.created_at, m.index), reverse=True)
    expected = newest if group.scale_in_order == 'newest' else newest[::-1]
    assert decision.remove == [m.name for m in expected[:len(decision.remove)]]


def rule_cooldown_holds_everything_but_the_bounds(group, members, samples, hosts, decision):
    if cooldown_left(group, members) and group.min_size <= len(members) <= group.max_size:
        assert decision.action == 'none' and decision.waiting and decision.waiting > 0
        assert '%d s left' % decision.waiting in decision.reason
    else:
        assert decision.waiting is None


def rule_placement_uses_up_hosts_with_room_only(group, members, samples, hosts, decision):
    used = dict((host, [0, 0]) for host in group.hosts)
    for new in decision.create:
        assert new['host'] in group.hosts and hosts[new['host']]['up']
        used[new['host']][0] += group.vcpus
        used[new['host']][1] += group.memory_mb
    for host, (vcpus, memory_mb) in used.items():
        assert vcpus <= hosts[host]['free_vcpus'] and memory_mb <= hosts[host]['free_memory_mb']


def rule_new_names_never_clash(group, members, samples, hosts, decision):
    names = [new['name'] for new in decision.create]
    assert len(set(names)) == len(names)
    assert not set(names) & set(m.name for m in members)
    assert not set(new['index'] for new in decision.create) & set(m.index for m in members)
    for new in decision.create:
        assert new['name'] == 'web-%d' % new['index'] and new['index'] >= 1
    # The lowest free indices, from 1.
    free = [index for index in range(1, 40) if index not in set(m.index for m in members)]
    assert sorted(new['index'] for new in decision.create) == free[:len(names)]


def rule_replacement_keeps_enough_running(group, members, samples, hosts, decision):
    if decision.action != 'replace':
        assert not decision.remove_first
        return
    by_name = dict((m.name, m) for m in members)
    removed = [by_name[name] for name in decision.remove]
    assert all(m.template_version != group.template_version for m in removed)
    assert 1 <= len(removed) == len(decision.create) <= group.max_unavailable
    assert decision.size_after == len(members)
    running = sum(1 for m in members if m.running)
    # New members are not counted: even if none boots, the floor holds (or no running one goes).
    running_after = running - sum(1 for m in removed if m.running)
    assert running_after >= len(members) - group.max_unavailable or running_after == running
    assert decision.remove_first == (group.addresses is not None and len(members) + len(removed) > group.addresses)


RULES = (
    rule_size_stays_within_bounds, rule_increment_limits_scaling, rule_thresholds_judged_over_the_window,
    rule_scale_in_removes_in_the_declared_order_and_never_below_min, rule_cooldown_holds_everything_but_the_bounds,
    rule_placement_uses_up_hosts_with_room_only, rule_new_names_never_clash, rule_replacement_keeps_enough_running,
)


@settings(max_examples=600, deadline=None)
@given(scenarios())
def test_every_rule_holds_on_random_groups(scenario):
    group, members, samples, hosts = scenario
    decision = _scaling.decide(group, members, samples, hosts, NOW)
    for rule in RULES:
        rule(group, members, samples, hosts, decision)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_same_input_same_decision_whatever_the_order(scenario, rng):
    group, members, samples, hosts = scenario
    first = _scaling.decide(group, members, samples, hosts, NOW).to_dict()
    assert _scaling.decide(group, members, samples, hosts, NOW).to_dict() == first
    shuffled = list(members)
    rng.shuffle(shuffled)
    assert _scaling.decide(group, shuffled, dict(reversed(list(samples.items()))), hosts, NOW).to_dict() == first


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 4), st.data())
def test_round_robin_keeps_hosts_within_one(host_count, size, grow, data):
    hosts = list(HOSTS[:host_count])
    # A balanced start: what round_robin itself would have built.
    members = [member(index + 1, host=hosts[index % host_count]) for index in range(size)]
    order = data.draw(st.permutations(hosts))
    group = spec(hosts=list(order), min_size=0, max_size=size + grow, increment=grow, cooldown=0)
    decision = _scaling.decide(group, members, load(members, cpu=0.99), roomy(*hosts), NOW)
    assert decision.action == 'scale_out' and len(decision.create) == grow
    counts = dict((host, 0) for host in hosts)
    for host in [m.host for m in members] + [new['host'] for new in decision.create]:
        counts[host] += 1
    assert max(counts.values()) - min(counts.values()) <= 1


def step(group, members, decision, now):
    """Apply a decision as the actuator would: new members boot, the action stamps the survivors."""
    gone = set(decision.remove)
    kept = [dataclasses.replace(m, last_action_at=now) for m in members if m.name not in gone]
    kept += [_scaling.Member(name=new['name'], host=new['host'], index=new['index'], created_at=now,
                             template_version=group.template_version, last_action_at=now)
             for new in decision.create]
    return kept


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.sampled_from(_scaling.SCALE_IN_ORDERS), st.booleans(), st.data())
def test_rolling_replacement_finishes_at_the_same_size(size, max_unavailable, order, tight, data):
    group = spec(hosts=['h1', 'h2', 'h3'], min_size=1, max_size=size if tight else 8, max_unavailable=max_unavailable,
                 scale_in_order=order, addresses=size if tight else None, cooldown=60)
    members = [member(index + 1, host=HOSTS[index % 3], template='v1',
                      running=data.draw(st.booleans())) for index in range(size)]
    now = NOW
    for count in range(2 * size + 2):
        decision = _scaling.decide(group, members, load(members, cpu=0.5, at=now - 1), roomy('h1', 'h2', 'h3'), now)
        if decision.action == 'none':
            break
        assert decision.action == 'replace'
        # With exactly max_size addresses there is never one to spare for a new member.
        assert decision.remove_first == tight
        members = step(group, members, decision, now)
        assert len(members) == size
        now += 61
    assert all(m.template_version == 'v2' for m in members), decision.reason
    assert count <= size


# ---------------------------------------------------------------- rules by example

def test_scale_out_above_the_threshold_names_the_numbers():
    members = [member(1, 'h1'), member(2, 'h2')]
    decision = _scaling.decide(spec(), members, load(members, cpu=0.91), roomy('h1', 'h2'), NOW)
    assert decision.action == 'scale_out'
    assert decision.reason == 'cpu 0.91 > scale_out 0.80 over 300 s; 2 -> 3 members'
    assert decision.create == [{'name': 'web-3', 'host': 'h1', 'index': 3}]
    assert (decision.size_before, decision.size_after, decision.waiting) == (2, 3, None)


def test_the_group_value_is_the_mean_of_member_means_in_the_window():
    members = [member(1), member(2)]
    samples = {'web-1': [(NOW - 10, 1.0, None, None)] * 9 + [(NOW - 20, 0.0, None, None)],
               'web-2': [(NOW - 10, 0.2, None, None), (NOW - 301, 1.0, None, None), (NOW + 1, 1.0, None, None)]}
    values = _scaling.group_metrics(spec(), members, samples, NOW)
    assert math.isclose(values['cpu'], (0.9 + 0.2) / 2)
    assert values['memory'] is None and values['disk_io'] is None


def test_an_unknown_metric_never_triggers():
    group = spec(thresholds={'cpu': {'scale_out': 0.8, 'scale_in': 0.3}, 'memory': {'scale_out': 0.8, 'scale_in': 0.3}})
    members = [member(1), member(2)]
    idle = _scaling.decide(group, members, load(members, cpu=0.1), roomy(), NOW)
    assert idle.action == 'scale_in' and 'memory: no sample' in idle.reason
    silent = _scaling.decide(group, members, load(members, cpu=0.9, at=NOW - 301), roomy(), NOW)
    assert silent.action == 'none' and 'no cpu or memory sample in the last 300 s' in silent.reason


def test_scale_in_needs_every_known_metric_below():
    group = spec(thresholds={'cpu': {'scale_out': 0.8, 'scale_in': 0.3}, 'disk_io': {'scale_out': 4e7, 'scale_in': 1e6}})
    members = [member(1), member(2)]
    busy_disk = _scaling.decide(group, members, load(members, cpu=0.1, disk_io=2e6), roomy(), NOW)
    assert busy_disk.action == 'none' and 'disk_io 1.9 MiB/s within' in busy_disk.reason
    idle = _scaling.decide(group, members, load(members, cpu=0.1, disk_io=5e5), roomy(), NOW)
    assert idle.action == 'scale_in' and idle.remove == ['web-1']
    hot_disk = _scaling.decide(group, members, load(members, cpu=0.1, disk_io=5e7), roomy(), NOW)
    assert hot_disk.action == 'scale_out' and 'disk_io 47.7 MiB/s > scale_out 38.1 MiB/s' in hot_disk.reason


def test_cooldown_says_how_long_and_what_comes_next():
    members = [member(1, last_action_at=NOW - 100), member(2)]
    decision = _scaling.decide(spec(), members, load(members, cpu=0.95), roomy(), NOW)
    assert decision.action == 'none' and decision.waiting == 200
    assert decision.reason.startswith('cooldown: 200 s left of 300 s since the last action; then: cpu 0.95')


def test_cooldown_ends_exactly_cooldown_seconds_after_the_last_action():
    members = [member(1, last_action_at=NOW - 299.5), member(2, last_action_at=NOW - 1000)]
    assert _scaling.decide(spec(), members, load(members, cpu=0.95), roomy(), NOW).waiting == 1
    members = [member(1, last_action_at=NOW - 300), member(2)]
    decision = _scaling.decide(spec(), members, load(members, cpu=0.95), roomy(), NOW)
    assert decision.action == 'scale_out' and decision.waiting is None


def test_bounds_ignore_the_cooldown():
    fresh = dict(last_action_at=NOW - 1)
    low = _scaling.decide(spec(min_size=3), [member(1, **fresh)], {}, roomy(), NOW)
    assert low.action == 'heal' and [c['name'] for c in low.create] == ['web-2', 'web-3']
    high = _scaling.decide(spec(max_size=2, scale_in_order='newest'), [member(i, **fresh) for i in (1, 2, 3)], {},
                           roomy(), NOW)
    assert high.action == 'scale_in' and high.remove == ['web-3'] and '3 members, above max_size 2' in high.reason


def test_heal_that_cannot_place_everyone_says_so():
    hosts = {'h1': {'up': True, 'free_vcpus': 2, 'free_memory_mb': 4096}, 'h2': {'up': False, 'free_vcpus': 64,
                                                                                 'free_memory_mb': 65536}}
    decision = _scaling.decide(spec(min_size=3), [], {}, hosts, NOW)
    assert decision.action == 'heal' and decision.size_after == 1
    assert 'placed 1 of 3: no up host has room for a member of 2 vCPUs and 2048 MiB' in decision.reason


def test_placement_strategies():
    hosts = {'h1': {'up': True, 'free_vcpus': 8, 'free_memory_mb': 4096},
             'h2': {'up': True, 'free_vcpus': 8, 'free_memory_mb': 8192},
             'h3': {'up': False, 'free_vcpus': 64, 'free_memory_mb': 65536}}
    members = [member(1, 'h2')]

    def hosts_for(placement):
        group = spec(hosts=['h1', 'h2', 'h3'], placement=placement, max_size=6, increment=4, cooldown=0)
        decision = _scaling.decide(group, members, load(members, cpu=0.9), hosts, NOW)
        return [new['host'] for new in decision.create]

    assert hosts_for('round_robin') == ['h1', 'h1', 'h2', 'h2']
    assert hosts_for('most_free') == ['h2', 'h2', 'h1', 'h2']
    assert hosts_for('fill_first') == ['h1', 'h1', 'h2', 'h2']


def test_scale_in_order_newest_and_oldest():
    members = [member(1, created_at=NOW - 500), member(2, created_at=NOW - 900), member(3, created_at=NOW - 500)]
    idle = load(members, cpu=0.0)
    newest = _scaling.decide(spec(scale_in_order='newest', increment=2), members, idle, roomy(), NOW)
    oldest = _scaling.decide(spec(scale_in_order='oldest', increment=2), members, idle, roomy(), NOW)
    assert newest.remove == ['web-3', 'web-1'] and oldest.remove == ['web-2', 'web-1']
    at_min = _scaling.decide(spec(min_size=3), members, idle, roomy(), NOW)
    assert at_min.action == 'none' and 'at min_size 3' in at_min.reason


def test_replacement_creates_first_then_waits_for_the_floor():
    group = spec(min_size=1, max_size=4, max_unavailable=1)
    members = [member(1, template='v1'), member(2, template='v1', running=False), member(3, template='v1')]
    first = _scaling.decide(group, members, load(members, cpu=0.5), roomy(), NOW)
    # The stopped member goes first: it is unavailable already.
    assert first.action == 'replace' and first.remove == ['web-2'] and not first.remove_first
    assert first.create == [{'name': 'web-4', 'host': 'h2', 'index': 4}]
    stopped = [member(1, template='v1'), member(2, running=False), member(3, template='v1')]
    waits = _scaling.decide(group, stopped, load(stopped, cpu=0.5), roomy(), NOW)
    assert waits.action == 'none' and 'fewer than 2 running' in waits.reason


def test_scaling_takes_precedence_over_replacement():
    members = [member(1, template='v1'), member(2, template='v1')]
    hot = _scaling.decide(spec(), members, load(members, cpu=0.9), roomy(), NOW)
    assert hot.action == 'scale_out' and not hot.remove
    full = _scaling.decide(spec(max_size=2), members, load(members, cpu=0.9), roomy(), NOW)
    assert full.action == 'replace' and 'at max_size 2' in full.reason


def test_replacement_without_a_spare_address_removes_first():
    members = [member(1, template='v1'), member(2, template='v1')]
    decision = _scaling.decide(spec(max_size=2, addresses=2), members, load(members, cpu=0.5), roomy(), NOW)
    assert decision.action == 'replace' and decision.remove_first and 'removing first' in decision.reason


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize('changes, option, words', [
    ({'flavour': 'big'}, 'flavour', 'unknown option'),
    ({'min_size': 5, 'max_size': 3}, 'min_size', 'above max_size 3'),
    ({'cooldown': -1}, 'cooldown', 'set cooldown to 0 or more'),
    ({'increment': 0}, 'increment', 'set increment to 1 or more'),
    ({'max_size': 10, 'addresses': 5}, 'max_size', 'widen the address range'),
    ({'thresholds': {'cpu': {'scale_out': 0.5, 'scale_in': 0.5}}}, 'thresholds.cpu.scale_in', 'lower than scale_out'),
    ({'thresholds': {}}, 'thresholds', 'at least one of cpu, memory, disk_io'),
    ({'thresholds': {'cpu': {'scale_out': 1.5, 'scale_in': 0.1}}}, 'thresholds.cpu.scale_out', 'from 0 to 1'),
    ({'thresholds': {'load': {}}}, 'thresholds.load', 'unknown metric'),
    ({'placement': 'rr'}, 'placement', 'round_robin, most_free, fill_first'),
    ({'hosts': []}, 'hosts', 'at least one libvirt host'),
    ({'hosts': ['h1', 'h2', 'h1']}, 'hosts', 'h1 is listed twice'),
    ({'name': 'Web_1'}, 'name', 'lowercase letters'),
    ({'template_version': None}, 'template_version', 'required'),
])
def test_bad_options_name_the_option_and_the_fix(changes, option, words):
    with pytest.raises(_scaling.ScalingConfigError) as info:
        _scaling.validate_spec(raw_spec(**changes))
    assert info.value.option == option
    assert str(info.value).startswith(option + ': ') and words in str(info.value)


def test_defaults_fill_what_is_left_out():
    raw = raw_spec()
    for key in ('min_size', 'increment', 'cooldown', 'window', 'placement', 'scale_in_order', 'max_unavailable'):
        raw[key] = None
    group = _scaling.validate_spec(raw)
    assert (group.min_size, group.increment, group.cooldown, group.window) == (1, 1, 300, 300)
    assert (group.placement, group.scale_in_order, group.max_unavailable) == ('round_robin', 'oldest', 1)


# ---------------------------------------------------------------- metadata record

def test_member_record_round_trip_with_escaping():
    original = _scaling.Member(name='web-7', host='qemu+ssh://h1/system', index=7, created_at=1767225600,
                               template_version='sha256:ab<"&\'>', address='10.0.0.7', running=True,
                               last_action_at=1767229200)
    text = _scaling.member_xml('web', original)
    assert text.startswith('<member group="web" index="7" created_at="2026-01-01T00:00:00Z" ')
    assert 'last_action_at="2026-01-01T01:00:00Z"' in text and '&lt;' in text and '&amp;' in text
    assert _scaling.parse_member_xml(text, 'web-7', 'qemu+ssh://h1/system', True, 'web') == original
    # As libvirt may hand it back: in the namespace, with its prefix.
    namespaced = text.replace('<member ', '<leveller:member xmlns:leveller="%s" ' % _scaling.SCALING_NS)
    assert _scaling.parse_member_xml(namespaced, 'web-7', 'qemu+ssh://h1/system', True, 'web') == original


def test_member_record_without_address_or_action():
    original = member(3, running=False)
    original = dataclasses.replace(original, address=None, created_at=1767225600)
    text = _scaling.member_xml('web', original)
    assert 'address' not in text and 'last_action_at' not in text
    assert _scaling.parse_member_xml(text, 'web-3', 'h1', False, 'web') == original


@pytest.mark.parametrize('text, domain', [
    (None, 'web-3'),
    ('', 'web-3'),
    ('<member group="web" index="3" created_at="2026-01-01T00:00:00Z" template="v1"', 'web-3'),
    ('<member group="api" index="3" created_at="2026-01-01T00:00:00Z" template="v1"/>', 'web-3'),
    ('<move at="2026-01-01T00:00:00Z"/>', 'web-3'),
    ('<member group="web" index="x" created_at="2026-01-01T00:00:00Z" template="v1"/>', 'web-3'),
    ('<member group="web" index="3" created_at="yesterday" template="v1"/>', 'web-3'),
    ('<member group="web" index="3" created_at="2026-01-01T00:00:00Z"/>', 'web-3'),
    ('<member group="web" index="3" created_at="2026-01-01T00:00:00Z" template="v1" last_action_at="soon"/>', 'web-3'),
    ('<member group="web" index="3" created_at="2026-01-01T00:00:00Z" template="v1"/>', 'web-3-clone'),
])
def test_foreign_or_damaged_records_are_not_members(text, domain):
    assert _scaling.parse_member_xml(text, domain, 'h1', True, 'web') is None


def test_helpers_are_pure():
    # decide must not touch its inputs: the actuator reuses them for the diff.
    members = [member(1, template='v1'), member(2)]
    samples = load(members, cpu=0.9)
    hosts = roomy()
    before = (list(members), repr(samples), repr(hosts))
    _scaling.decide(spec(), members, samples, hosts, NOW)
    assert (list(members), repr(samples), repr(hosts)) == before


def test_member_record_lists_its_volumes_and_still_parses():
    original = member(4)
    volumes = (('images', 'web-4.qcow2'), ('images', "web-4-seed<&>.iso"))
    text = _scaling.member_xml('web', original, volumes)
    assert text.endswith('<volume pool="images" name="web-4.qcow2"/><volume pool="images" '
                         'name="web-4-seed&lt;&amp;&gt;.iso"/></member>')
    assert _scaling.parse_member_xml(text, 'web-4', 'h1', True, 'web') == original
    assert _scaling.member_volumes(text) == volumes
    namespaced = text.replace('<member ', '<leveller:member xmlns:leveller="%s" ' % _scaling.SCALING_NS).replace(
        '</member>', '</leveller:member>').replace('<volume ', '<leveller:volume ')
    assert _scaling.member_volumes(namespaced) == volumes
    assert _scaling.member_volumes(_scaling.member_xml('web', original)) == ()
    assert _scaling.member_volumes('<member') == () and _scaling.member_volumes(None) == ()
