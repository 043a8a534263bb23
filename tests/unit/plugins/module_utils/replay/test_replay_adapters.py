# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replay around the engine: the PlanetLab day reader and the collection's strategies."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip

import pytest

from ansible_collections.cloudops.leveller.benchmarks.replay import planetlab
from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

G4 = replay.PowerModel((86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117), "G4")


def test_day_reader_and_cloudsim_setup(tmp_path):
    path = str(tmp_path / "20990101.csv.gz")
    lines = ["vm,t0,t300,t600"] + ["vm%02d,%d,0,0" % (i, i) for i in range(10)]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    names, traces = planetlab.read_day(path)
    assert names[0] == "vm00" and traces[3] == [0.03, 0.0, 0.0]
    assert planetlab.day_name(path) == "20990101"
    hosts, vms = planetlab.load(path)
    assert len(hosts) == 800
    assert [h.mips for h in hosts[:2]] == [3720.0, 5320.0]
    assert hosts[0].core_mips == 1860.0 and hosts[1].ram_mb == 4096
    # four types in blocks of ceil(10 / 4) = 3: 3, 3, 3, 1
    assert [v.kind for v in vms] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert (vms[0].mips, vms[0].ram_mb, vms[9].mips, vms[9].ram_mb) == (2500.0, 870, 500.0, 613)


def test_day_reader_refuses_a_short_line(tmp_path):
    path = str(tmp_path / "bad.csv")
    with open(path, "w") as handle:
        handle.write("vm,t0,t300\nvm1,1\n")
    with pytest.raises(ValueError, match="expected 2 samples"):
        planetlab.read_day(path)


class Fixed(object):
    def __init__(self, hosts_of):
        self.hosts_of = hosts_of

    def place(self, rp):
        return list(self.hosts_of)


def test_strategy_policy_runs_overload_on_the_simulated_cloud():
    hosts = [replay.Host(i, "h%d" % i, 0, 2, 1000, 4096, 1000, G4) for i in range(3)]
    trace = [0.9] * 6
    vms = [replay.Vm(i, "v%d" % i, 0, 1000, 870, trace, 300.0) for i in range(3)]
    policy = replay.StrategyPolicy("overload", {"threshold": 0.6, "max_moves": 0, "cooldown": 0})
    rp = replay.Replay(hosts, vms, Fixed([0, 0, 1]), [replay.Every(policy)], replay.REAL, 300.0,
                       keep_log=True)
    snapshot = policy.snapshot(rp, 0.0)
    assert [h.name for h in snapshot.hosts] == ["h0", "h1", "h2"]
    result = rp.run()
    # host 0 asks for 1,800 of 2,000 MIPS (0.9 > 0.6): one of its VMs goes to the empty host
    assert result["migrations"] == 1
    assert sorted(len(h.vms) for h in rp.hosts) == [1, 1, 1]
    assert result["refused_moves"] == 0
    plan = policy.last_plan
    assert plan is not None and plan.strategy == "overload"


def test_strategy_policy_snapshot_loads_and_ram():
    hosts = [replay.Host(i, "h%d" % i, 0, 2, 1000, 4096, 1000, G4) for i in range(2)]
    vms = [replay.Vm(0, "v0", 0, 1000, 1740, [0.5] * 3, 300.0)]
    policy = replay.StrategyPolicy("consolidate")
    rp = replay.Replay(hosts, vms, Fixed([1]), [], replay.REAL, 300.0)
    rp._place()
    rp._refresh_all(0.0, tick=True)
    snapshot = policy.snapshot(rp, 0.0)
    host = snapshot.hosts[1]
    assert host.load.cpu == pytest.approx(0.25)
    assert host.used.memory_mb == 1740 and host.allocation_ratio.memory_mb == 1.0
    inst = snapshot.instances[0]
    assert inst.load.cpu == pytest.approx(0.5) and inst.flavor.vcpus == 1000.0
    # CloudSim rules: RAM never binds
    rp.rules = replay.CLOUDSIM
    assert policy.snapshot(rp, 0.0).hosts[0].allocation_ratio.memory_mb == 1000.0


def test_strategy_policy_estimate_uses_the_past_hour_only():
    hosts = [replay.Host(i, "h%d" % i, 0, 2, 1000, 4096, 1000, G4) for i in range(2)]
    # samples every 300 s: 0.1 x 10, then 0.9, 0.2, then 1.0 (the future at 3,600 s)
    trace = [0.1] * 10 + [0.9, 0.2, 0.2, 1.0, 1.0]
    vms = [replay.Vm(0, "v0", 0, 1000, 870, trace, 300.0),
           replay.Vm(1, "v1", 0, 1000, 870, [0.3] * 15, 300.0)]
    rp = replay.Replay(hosts, vms, Fixed([1, 1]), [], replay.REAL, 300.0)
    rp._place()
    now = 3600.0  # sample 12 is the present, 13 and 14 are the future
    rp._demands(now)
    plain = replay.StrategyPolicy("consolidate")
    assert plain.demands(rp, now) == [200.0, 300.0]
    p90 = replay.StrategyPolicy("consolidate", estimate=(90, 3600))
    # window: samples 0..12 (13 values: ten 0.1, 0.9, 0.2, 0.2); p90 by nearest rank is the
    # 12th smallest, 0.2; the largest (0.9) is the 13th, so the p100 estimate sees it
    assert p90.demands(rp, now) == [200.0, 300.0]
    top = replay.StrategyPolicy("consolidate", estimate=(100, 3600))
    assert top.demands(rp, now) == [900.0, 300.0]
    # never the future: the 1.0 samples at 3,900 s and 4,200 s do not count
    assert max(top.demands(rp, now)) < 1000.0
    # a host reports the sum of its VMs' estimates (1,200 of 2,000 MIPS)
    snapshot = top.snapshot(rp, now)
    assert snapshot.hosts[1].load.cpu == pytest.approx(0.6)
    assert snapshot.instances[0].load.cpu == pytest.approx(0.9)
    # the median of samples 10..12 (600 s: 0.9, 0.2, 0.2) is 0.2; 300 s (samples 11..12)
    # leaves the 0.9 out even at p100
    assert replay.StrategyPolicy("consolidate", estimate=(50, 600)).demands(rp, now) == [200.0, 300.0]
    assert replay.StrategyPolicy("consolidate", estimate=(100, 600)).demands(rp, now) == [900.0, 300.0]
    assert replay.StrategyPolicy("consolidate", estimate=(100, 300)).demands(rp, now) == [200.0, 300.0]


def test_the_targets_are_judged_under_cloudsim_rules_and_only_shown_under_real_rules():
    from ansible_collections.cloudops.leveller.benchmarks.replay import run_replay
    base = {"policy": "lr-mmt-1.2", "day": "d", "rules": "cloudsim", "energy_kwh": 100.0, "migrations": 100,
            "slav": 1e-5, "max_migrations_per_vm": 30}
    ours = dict(base, policy="leveller-frontier", energy_kwh=85.0, migrations=5, slav=1e-7, max_migrations_per_vm=2)
    judged = run_replay.versus([base, ours], None)
    assert "energy 0.850x MISSED" in judged and "migrations 1/20.0 met" in judged and "max/VM 2 met" in judged
    shown = run_replay.versus([dict(base, rules="real"), dict(ours, rules="real")], None)
    assert "for reference only" in shown and "energy 0.850x," in shown
    assert "MISSED" not in shown and " met" not in shown
