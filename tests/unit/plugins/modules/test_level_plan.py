# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""level_plan's contract: pure, changed=false, bad snapshot or parameter fails naming the field."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.cloudops.leveller.plugins.modules import level_plan as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import module_runner
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    host, instance, snapshot,
)


@pytest.fixture
def run(monkeypatch):
    return module_runner(monkeypatch, mod)


def cloud():
    insts = [instance("i%d" % n, "a", vcpus=8, cpu=0.8) for n in range(4)]
    return snapshot([host("a", cpu=0.8, memory=0.1), host("b", cpu=0.1, memory=0.1)], insts)


def test_plans_from_a_dict(run):
    out = run({'snapshot': cloud(), 'max_moves': 5})
    assert not out.failed and out.result['changed'] is False
    plan = out.result['plan']
    assert plan['strategy'] == 'balance' and plan['params']['max_moves'] == 5
    assert plan['moves'] and all(m['destination'] == 'b' for m in plan['moves'])


def test_every_balance_parameter_reaches_the_planner(run):
    # a prohibitive price per GiB leaves nothing worth moving; the option is not dropped on the way
    cheap = run({'snapshot': cloud(), 'max_moves': 5, 'min_gain_per_gib': 0.0}).result['plan']
    dear = run({'snapshot': cloud(), 'max_moves': 5, 'min_gain_per_gib': 1000.0}).result['plan']
    assert dear['params']['min_gain_per_gib'] == 1000.0
    assert cheap['moves'] and not dear['moves']


def test_plans_from_a_file_and_in_check_mode(run, tmp_path):
    path = tmp_path / 'snapshot.json'
    path.write_text(json.dumps(cloud()))
    out = run({'snapshot_file': str(path), 'strategy': 'overload', 'threshold': 0.5,
               'scope': {'az': ['nova']}, '_ansible_check_mode': True})
    assert not out.failed and out.result['changed'] is False
    assert out.result['plan']['strategy'] == 'overload'
    assert out.result['plan']['params']['scope'] == {'az': ['nova']}
    assert out.result['plan']['moves']


def test_same_input_same_plan(run):
    first = run({'snapshot': cloud()}).result['plan']
    second = run({'snapshot': cloud()}).result['plan']
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_bad_snapshot_names_the_field(run):
    bad = cloud()
    bad['hosts'][1]['capacity']['memory_mb'] = 'abc'
    out = run({'snapshot': bad})
    assert out.failed
    assert out.result['msg'] == ("invalid snapshot: hosts[1].capacity.memory_mb: expected a number from 0"
                                 " to 67108864, got 'abc'")


def test_parameter_of_the_other_strategy_is_refused(run):
    out = run({'snapshot': cloud(), 'threshold': 0.5})
    assert out.failed and out.result['msg'].startswith('invalid parameter: threshold: unknown parameter')


def test_snapshot_and_file_are_exclusive(run):
    out = run({'snapshot': cloud(), 'snapshot_file': '/nonexistent'})
    assert out.failed and 'mutually exclusive' in out.result['msg']
    out = run({'strategy': 'balance'})
    assert out.failed and 'one of the following is required' in out.result['msg']
