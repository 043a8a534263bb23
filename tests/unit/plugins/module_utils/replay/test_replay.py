# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replay engine on small hand-made clouds: power, energy, deletion, clock, migrations, SLA."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.benchmarks.replay import cloudsim_policies
from ansible_collections.cloudops.leveller.benchmarks.replay.check_replay import check
from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

G4 = replay.PowerModel((86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117), "G4")
G5 = replay.PowerModel((93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135), "G5")
INTERVAL = 300.0


def host(index, core=1000, cores=2, ram=4096, model=G4, kind=0):
    return replay.Host(index, "h%d" % index, kind, cores, core, ram, 1000, model)


def vm(index, trace, mips=1000, ram=870):
    return replay.Vm(index, "v%d" % index, 0, mips, ram, trace, INTERVAL)


class Fixed(object):
    """Placement given as a list of host indexes."""

    def __init__(self, hosts_of):
        self.hosts_of = hosts_of

    def place(self, rp):
        return list(self.hosts_of)


class Script(object):
    """A policy that plays given moves at given tick numbers (0 = the first tick)."""

    name = "script"

    def __init__(self, moves_at):
        self.moves_at = moves_at
        self.tick = 0

    def plan(self, rp, now):
        moves = self.moves_at.get(self.tick, [])
        self.tick += 1
        return moves


def run(hosts, vms, hosts_of, moves_at=None, rules=replay.CLOUDSIM, keep_log=True):
    schedule = [replay.Every(Script(moves_at or {}))]
    rp = replay.Replay(hosts, vms, Fixed(hosts_of), schedule, rules, INTERVAL, keep_log=keep_log)
    return rp, rp.run()


# ---------------------------------------------------------------- power and energy

def test_power_is_linear_between_the_ten_percent_points():
    assert G4.power(0) == 86
    assert G4.power(0.1) == pytest.approx(89.4)
    assert G4.power(0.05) == pytest.approx(87.7)
    assert G4.power(0.55) == pytest.approx(104.0)
    assert G4.power(1.0) == 117
    assert G5.power(0.25) == pytest.approx(103.0)


def test_power_refuses_a_utilisation_outside_0_1():
    with pytest.raises(ValueError):
        G4.power(1.2)
    with pytest.raises(ValueError):
        G4.power(-0.1)


def test_power_model_needs_eleven_points():
    with pytest.raises(ValueError):
        replay.PowerModel((1, 2, 3))


def test_energy_is_the_trapezoid_of_the_power_at_both_ends():
    assert replay.energy_ws(G4, 0.5, 0.5, 10) == pytest.approx(102 * 10)
    assert replay.energy_ws(G4, 0.0 + 0.1, 0.5, 10) == pytest.approx((89.4 + 102) / 2 * 10)


def test_energy_off_rule():
    # CloudSim: 0 % at the start of a stretch is switched off, whatever the end
    assert replay.energy_ws(G4, 0.0, 0.8, 300) == 0
    # real rules: a host with VMs is on even at 0 %, an empty host is off
    assert replay.energy_ws(G4, 0.0, 0.0, 300, off_when_idle=False, powered=True) == 86 * 300
    assert replay.energy_ws(G4, 0.5, 0.5, 300, off_when_idle=False, powered=False) == 0


def test_migration_time_is_ram_over_half_the_link():
    assert replay.migration_seconds(870, 1000) == pytest.approx(13.92)
    assert replay.migration_seconds(1740, 1000) == pytest.approx(27.84)
    assert replay.migration_seconds(613, 1000) == pytest.approx(9.808)
    # the same double as CloudSim's ram / (1,000,000 / 16,000)
    assert replay.migration_seconds(870, 1000) == 870 / (1000000 / 16000.0)


# ---------------------------------------------------------------- allocation

def test_allocation_caps_a_vm_at_one_core_and_scales_when_overcommitted():
    allocs, available = replay.allocation(2000.0, 1000.0, [1500.0, 200.0], [0, 0])
    assert allocs == [1000.0, 200.0]  # the core cap
    assert available == 800.0
    allocs, available = replay.allocation(2000.0, 1000.0, [800.0, 800.0, 800.0], [0, 0, 0])
    assert allocs == [666, 666, 666]  # floor(800 x 2000 / 2400)
    assert available == 0


def test_allocation_during_a_migration_90_10():
    allocs = replay.allocation(2000.0, 1000.0, [500.0, 400.0], [1, 2])[0]
    assert allocs == [pytest.approx(450.0), pytest.approx(40.0)]


# ---------------------------------------------------------------- clock, window, deletion

def test_cloudsim_clock_measures_300_1_to_the_last_tick():
    samples = 6
    h = host(0)
    v = vm(0, [0.5] * samples, mips=1000)
    rp, result = run([h], [v], [0])
    # ticks at 300.1 ... 1500.1: the first stretch (0 -> 300.1) reads 0 % and counts nothing,
    # the stretch after the last tick is never closed
    first, last = 0.1 + 300.0, 0.1 + 300.0 * (samples - 1)
    expected = G4.power(1000 * 0.5 / 2000.0) * (last - first)
    assert result["energy_kwh"] * 3.6e6 == pytest.approx(expected)
    assert result["ticks"] == samples - 1


def test_real_rules_measure_the_whole_series():
    samples = 6
    h = host(0)
    v = vm(0, [0.5] * samples, mips=1000)
    result = run([h], [v], [0], rules=replay.REAL)[1]
    assert result["energy_kwh"] * 3.6e6 == pytest.approx(G4.power(0.25) * samples * 300.0)


def test_demand_is_interpolated_between_samples():
    v = vm(0, [0.2, 0.5, 0.5])
    assert v.utilization_at(0.0, INTERVAL) == 0.2
    assert v.utilization_at(150.0, INTERVAL) == pytest.approx(0.35)
    assert v.utilization_at(300.1, INTERVAL) == pytest.approx(0.5)
    assert v.utilization_at(10 ** 6, INTERVAL) == 0.5  # past the end the last value repeats


def test_zero_mips_vm_is_deleted_under_cloudsim_rules_only():
    trace = [0.5, 0.0, 0.0, 0.4, 0.4]  # two zero samples in a row: 0 MIPS at 300.1
    h = host(0)
    rp, result = run([h], [vm(0, trace), vm(1, [0.3] * 5)], [0, 0])
    assert result["vms_deleted"] == 1
    assert not rp.vms[0].alive and rp.vms[1].alive
    assert [v.index for v in rp.hosts[0].vms] == [1]
    rp, result = run([host(0)], [vm(0, trace), vm(1, [0.3] * 5)], [0, 0], rules=replay.REAL)
    assert result["vms_deleted"] == 0 and rp.vms[0].alive


def test_one_zero_sample_is_not_enough():
    trace = [0.5, 0.0, 0.4, 0.0, 0.4]
    result = run([host(0)], [vm(0, trace)], [0])[1]
    assert result["vms_deleted"] == 0


# ---------------------------------------------------------------- migrations, SLATAH and PDM

def test_migration_costs_10_percent_on_the_source_and_reserves_10_on_the_destination():
    samples = 4
    hosts = [host(0), host(1)]
    vms = [vm(0, [0.5] * samples, mips=1000, ram=870)]
    rp, result = run(hosts, vms, [0], moves_at={0: [(0, 1)]})
    assert result["migrations"] == 1
    assert rp.vms[0].host is rp.hosts[1]
    demand = 500.0
    seconds = 870 / 62.5
    # PDM: 10 % of the demand during the migration, over the demand of the whole run
    measured = 300.0 * (samples - 2)  # 300.1 .. 900.1
    assert result["mips_s_lost_to_migration"] == pytest.approx(0.1 * demand * seconds)
    assert result["pdm"] == pytest.approx(0.1 * demand * seconds / (demand * measured))
    # SLATAH: the destination asks for the VM's full demand and has 10 % of it while the
    # migration runs; the source counts the VM at its full share
    active = measured + seconds
    assert result["overloaded_host_hours"] * 3600 == pytest.approx(seconds)
    assert result["slatah"] == pytest.approx(seconds / active)
    assert result["gib_moved"] == pytest.approx(870 / 1024.0)


def test_energy_during_a_migration_counts_both_hosts():
    samples = 3
    hosts = [host(0), host(1)]
    vms = [vm(0, [0.5] * samples, mips=1000, ram=870)]
    result = run(hosts, vms, [0], moves_at={0: [(0, 1)]})[1]
    seconds = 870 / 62.5
    u = 500.0 / 2000.0
    # host 0: full share until the VM lands, then trapezoid down to 0 %; host 1: 10 % during
    # the migration then the full share until the last tick
    source = G4.power(u) * seconds
    dest = G4.power(0.1 * u) * seconds + G4.power(u) * (300.0 - seconds)
    assert result["energy_kwh"] * 3.6e6 == pytest.approx(source + dest)


def test_slatah_counts_an_overcommitted_host_and_the_core_cap():
    samples = 4
    # three VMs of 800 MIPS on a 2 x 1000 host: overcommitted all the time
    result = run([host(0)], [vm(i, [1.0] * samples, mips=800) for i in range(3)], [0, 0, 0])[1]
    assert result["slatah"] == pytest.approx(1.0)
    assert result["pdm"] == 0  # no migration
    # one VM asking 1,500 MIPS on 1,000 MIPS cores: capped, hence short
    result = run([host(0)], [vm(0, [1.0] * samples, mips=1500)], [0])[1]
    assert result["slatah"] == pytest.approx(1.0)
    # within capacity and under the core: never short
    result = run([host(0)], [vm(0, [0.9] * samples, mips=1000)], [0])[1]
    assert result["slatah"] == 0


def test_ping_pong_counts_a_move_back_within_the_window():
    samples = 6
    hosts = [host(0), host(1)]
    vms = [vm(0, [0.5] * samples)]
    result = run(hosts, vms, [0], moves_at={0: [(0, 1)], 1: [(0, 0)], 2: [(0, 1)]})[1]
    assert result["migrations"] == 3
    assert result["ping_pong"] == 2
    assert result["max_migrations_per_vm"] == 3


def test_real_rules_refuse_a_move_that_breaks_ram():
    hosts = [host(0, ram=2048), host(1, ram=2048)]
    vms = [vm(0, [0.1] * 4, ram=1740), vm(1, [0.1] * 4, ram=1740)]
    rp, result = run(hosts, vms, [0, 1], moves_at={0: [(0, 1)]}, rules=replay.REAL)
    assert result["migrations"] == 0 and result["refused_moves"] == 1
    assert result["refused_reasons"] == {"RAM": 1}
    # CloudSim rules: RAM is not checked after the first placement
    rp, result = run([host(0, ram=2048), host(1, ram=2048)],
                     [vm(0, [0.1] * 4, ram=1740), vm(1, [0.1] * 4, ram=1740)],
                     [0, 1], moves_at={0: [(0, 1)]})
    assert result["migrations"] == 1


def test_waves_start_when_the_wave_before_has_landed():
    hosts = [host(0), host(1), host(2)]
    vms = [vm(0, [0.2] * 4, ram=1740), vm(1, [0.2] * 4, ram=613)]
    rp = run(hosts, vms, [0, 0], moves_at={0: [(0, 1, 1), (1, 2, 2)]})[0]
    starts = [e for e in rp.log if e[0] == "start"]
    assert [e[2] for e in starts] == [0, 1]
    assert starts[1][1] == pytest.approx(starts[0][5])  # wave 2 starts when wave 1 lands


# ---------------------------------------------------------------- the LR prediction

@given(st.lists(st.floats(0, 1), min_size=10, max_size=10))
def test_lr_weights_are_the_least_squares_line_one_interval_ahead(history):
    # history: most recent first, as PowerVm keeps it
    y = list(reversed(history))  # oldest first, x = 1..10
    x = list(range(1, 11))
    mx = sum(x) / 10.0
    my = sum(y) / 10.0
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    expected = my + slope * (11 - mx)
    got = sum(w * h for w, h in zip(cloudsim_policies.LR_WEIGHTS, history))
    assert got == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- invariants

class RandomMoves(object):
    name = "random"

    def __init__(self, draws):
        self.draws = draws

    def plan(self, rp, now):
        moves = []
        for _round in range(2):
            if not self.draws:
                break
            v, h = self.draws.pop()
            if rp.vms[v % len(rp.vms)].alive:
                moves.append((v % len(rp.vms), h % len(rp.hosts)))
        return moves


@settings(max_examples=60, deadline=None)
@given(
    n_hosts=st.integers(2, 5),
    traces=st.lists(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), min_size=6, max_size=6),
                    min_size=1, max_size=8),
    draws=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=12),
    rules=st.sampled_from(["cloudsim", "real"]),
)
def test_invariants_on_random_moves(n_hosts, traces, draws, rules):
    hosts = [host(i, core=1000 + 860 * (i % 2), ram=4096, model=(G4, G5)[i % 2], kind=i % 2)
             for i in range(n_hosts)]
    vms = [vm(i, t, mips=(500, 1000, 2000)[i % 3], ram=(613, 870, 1740)[i % 3])
           for i, t in enumerate(traces)]
    placement = [i % n_hosts for i in range(len(vms))]
    # keep the first placement within RAM
    held = [0] * n_hosts
    for i, v in enumerate(vms):
        h = min(range(n_hosts), key=lambda k: held[k])
        placement[i] = h
        held[h] += v.ram_mb
    if max(held) > 4096:
        return
    rp = replay.Replay(hosts, vms, Fixed(placement), [replay.Every(RandomMoves(list(draws)))],
                       replay.RULES[rules], INTERVAL, keep_log=True)
    result = rp.run()
    assert result["energy_kwh"] >= 0
    assert 0 <= result["slatah"] <= 1 and 0 <= result["pdm"] <= 1
    # no VM lost or doubled, and (real rules) RAM within capacity at every instant
    problems = check(rp.log, [h.ram_mb for h in hosts], [v.ram_mb for v in vms],
                     ram_enforced=rules == "real")
    assert problems == []
    alive = [v for v in rp.vms if v.alive]
    on_hosts = [v for h in rp.hosts for v in h.vms]
    assert sorted(v.index for v in on_hosts) == sorted(v.index for v in alive)
    if rules == "real":
        assert result["ram_peak_ratio"] <= 1.0
        assert result["vms_deleted"] == 0


def test_checker_finds_a_doubled_vm_and_ram_over_capacity():
    log = [("place", 0.0, 0, 0), ("place", 0.0, 0, 1)]
    assert any("placed twice" in p for p in check(log, [4096, 4096], [870]))
    log = [("place", 0.0, 0, 0), ("place", 0.0, 1, 0)]
    assert any("holds" in p for p in check(log, [1000], [870, 870]))


def test_cloudsim_first_fit_and_power_aware_placement():
    hosts = [host(0, core=1860, model=G4), host(1, core=2660, model=G5, kind=1),
             host(2, core=1860, model=G4), host(3, core=2660, model=G5, kind=1)]
    vms = [vm(0, [0.5] * 3, mips=2500, ram=870), vm(1, [0.5] * 3, mips=500, ram=613),
           vm(2, [0.5] * 3, mips=500, ram=613)]
    rp = replay.Replay(hosts, vms, None, [], replay.CLOUDSIM, INTERVAL)
    # first fit: the 2,500 MIPS VM does not fit a 1,860 MIPS core
    assert cloudsim_policies.FirstFit().place(rp) == [1, 0, 0]
    # power-aware: every VM to an empty host of the type whose power rises least (G5 here)
    test = cloudsim_policies.StaticThreshold(0.8)
    assert cloudsim_policies.PowerAwarePlacement(test).place(rp) == [1, 3, 0]
    assert math.isfinite(G5.power(500 / 5320.0))


# ---------------------------------------------------------------- schedule triggers

class Count(object):
    name = "count"

    def __init__(self):
        self.times = []

    def plan(self, rp, now):
        self.times.append(now)
        return []


def test_every_runs_at_the_first_tick_then_each_period():
    counter = Count()
    rp = replay.Replay([host(0)], [vm(0, [0.5] * 13)], Fixed([0]), [replay.Every(counter, 900.0)],
                       replay.REAL, INTERVAL)
    rp.run()
    assert counter.times == [0.0, 900.0, 1800.0, 2700.0, 3600.0]


def test_below_runs_only_when_the_mean_utilisation_is_under_the_level():
    counter = Count()
    trace = [0.9, 0.9, 0.1, 0.1, 0.9, 0.1]
    rp = replay.Replay([host(0)], [vm(0, trace, mips=2000)], Fixed([0]),
                       [replay.Below(counter, 0.5)], replay.REAL, INTERVAL)
    result = rp.run()
    assert counter.times == [600.0, 900.0, 1500.0]
    assert result["plan_runs"] == {"count": 3}


# ---------------------------------------------------------------- the timeline (the picture's data)

def test_timeline_counts_hosts_on_overloaded_and_moves_per_tick():
    samples = 5
    # h0 overcommitted (3 x 800 on 2,000) until one VM leaves for the empty h1 at the second tick
    hosts = [host(0), host(1)]
    vms = [vm(i, [1.0] * samples, mips=800) for i in range(3)]
    rp, result = run(hosts, vms, [0, 0, 0], moves_at={1: [(2, 1)]}, rules=replay.REAL)
    line = result["timeline"]
    assert len(line["t"]) == result["ticks"] == len(line["active"]) == len(line["overloaded"])
    assert line["migrations"] == [0, 1, 0, 0, 0][:len(line["t"])]
    assert sum(line["migrations"]) == result["migrations"] == 1
    assert line["overloaded"][0] == 1 and line["active"][0] == 1
    # after the VM has landed both hosts are on and neither is short of CPU
    assert line["active"][-1] == 2 and line["overloaded"][-1] == 0
    assert rp.timeline["t"] == line["t"] and line["t"] == sorted(line["t"])
    assert line["gib_moved"] == [0.0, 870 / 1024.0, 0.0, 0.0, 0.0][:len(line["t"])]
    # the energy of every interval but the last (closed after the last tick) is in the timeline
    assert sum(line["energy_kwh"]) <= result["energy_kwh"] and sum(line["energy_kwh"]) > 0
    assert line["energy_kwh"][0] == 0  # nothing before the first tick
    assert sum(line["plan_seconds"]) == pytest.approx(result["plan_seconds"])
