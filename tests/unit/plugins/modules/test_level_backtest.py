# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""level_backtest's contract: pure, changed=false, bad input fails naming the field."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import xml.dom.minidom

import pytest

from ansible_collections.cloudops.leveller.plugins.modules import level_backtest as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import module_runner
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    host, instance, snapshot,
)

TIMES = 12


@pytest.fixture
def run(monkeypatch):
    return module_runner(monkeypatch, mod)


def cloud():
    insts = [instance("i%d" % n, "a", vcpus=8, memory_mb=4096, cpu=0.8) for n in range(5)]
    return snapshot([host("a", cpu=0.8, memory=0.1, vcpus=32), host("b", cpu=0.1, memory=0.1, vcpus=32)], insts)


def history():
    return {"start": 1765000000.0, "step": 300, "times": TIMES, "hosts": {"a": {"cpu": [1.0] * TIMES}},
            "instances": dict(("i%d" % n, {"cpu": [0.9] * TIMES}) for n in range(5))}


CONFIGS = [
    {"name": "nothing", "schedule": [{"strategy": "home"}]},
    {"name": "relieve", "schedule": [{"strategy": "overload", "when": "hot", "level": 1.0,
                                      "params": {"threshold": 0.8}}]},
]


def test_replays_every_configuration_in_check_mode_too(run):
    out = run({"snapshot": cloud(), "history": history(), "configurations": CONFIGS, "_ansible_check_mode": True})
    assert not out.failed and out.result["changed"] is False
    result = out.result["backtest"]
    nothing, relieve = result["configurations"]
    assert nothing["name"] == "nothing" and nothing["migrations"] == 0
    # 5 x 8 vCPUs at 0.9 = 36 CPUs asked of 32: overloaded until the overload strategy moves one
    assert nothing["overloaded_host_hours"] == pytest.approx(1.0)
    assert relieve["migrations"] >= 1 and relieve["overloaded_host_hours"] < 0.2
    assert relieve["moves"][0]["source"] == "a" and relieve["moves"][0]["destination"] == "b"
    assert len(relieve["timeline"]["t"]) == TIMES
    assert result["table"].split("\n")[0].split() == ["nothing", "relieve"]
    xml.dom.minidom.parseString(result["svg"])


def test_reads_both_inputs_from_files(run, tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(cloud()))
    (tmp_path / "h.json").write_text(json.dumps(history()))
    out = run({"snapshot_file": str(tmp_path / "s.json"), "history_file": str(tmp_path / "h.json"),
               "configurations": CONFIGS[:1]})
    assert not out.failed and out.result["backtest"]["ticks"] == TIMES


@pytest.mark.parametrize("args, message", [
    ({"configurations": [{"name": "x", "schedule": [{"strategy": "home", "colour": 1}]}]}, "colour"),
    ({"configurations": [{"name": "x", "schedule": [{"strategy": "shuffle"}]}]}, "shuffle"),
    ({"configurations": [{"name": "x", "schedule": [{"strategy": "overload", "params": {"threshold": -1}}]}]},
     "configurations[0].schedule[0].params: threshold"),
    ({"configurations": [{"name": "x", "schedule": [{"strategy": "home", "every": 10}]}]},
     "configurations[0].schedule[0].every: 10 s is shorter than the history's step"),
    ({"history_file": "/nonexistent/h.json", "history": None}, "history_file /nonexistent/h.json: no such file"),
    ({"ping_pong_window": -1}, "ping_pong_window must be >= 0"),
    ({"power_idle_watts": 400.0}, "power_idle_watts and power_max_watts"),
])
def test_bad_input_fails_naming_the_field(run, args, message):
    given = {"snapshot": cloud(), "history": history(), "configurations": CONFIGS}
    given.update(args)
    given = dict((k, v) for k, v in given.items() if v is not None)
    out = run(given)
    assert out.failed
    assert message in out.result["msg"]


def test_check_only_needs_no_snapshot_and_fails_on_a_bad_parameter(run):
    out = run({"configurations": CONFIGS, "check_only": True})
    assert not out.failed and out.result["checked"] == ["nothing", "relieve"] and "backtest" not in out.result
    bad = [{"name": "x", "schedule": [{"strategy": "balance", "params": {"min_load": "high"}}]}]
    out = run({"configurations": bad, "check_only": True})
    assert out.failed and "configurations[0].schedule[0].params: min_load" in out.result["msg"]


def test_without_check_only_the_snapshot_and_history_are_required(run):
    out = run({"configurations": CONFIGS, "history": history()})
    assert out.failed and "snapshot" in out.result["msg"]
