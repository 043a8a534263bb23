# -*- coding: utf-8 -*-
"""The run report: every host gets a row, failed moves are named, the picture is valid SVG."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import xml.etree.ElementTree as ET

from ansible_collections.cloudops.leveller.plugins.module_utils._report import measured_figures, report_svg, report_table


def make_plan(hosts, moves):
    before = {h: {'score': s, 'instances': n} for h, (s, n) in hosts.items()}
    after = {h: {'score': s * 0.5 + 0.2, 'instances': n} for h, (s, n) in hosts.items()}
    return {
        'moves': moves,
        'before': {'hosts': before, 'spread': {'ratio': 3.0, 'stddev': 0.4, 'max': 1.6}},
        'after': {'hosts': after, 'spread': {'ratio': 0.5, 'stddev': 0.1, 'max': 1.0}},
        'summary': {'reason': 'balanced'},
    }


HOSTS = {'cmp1': (1.6, 8), 'cmp2': (0.9, 3), 'cmp10': (0.2, 0)}
MOVES = [
    {'instance': 'a', 'name': 'web-1', 'source': 'cmp1', 'destination': 'cmp10', 'memory_mb': 2048},
    {'instance': 'b', 'name': 'web-2', 'source': 'cmp1', 'destination': 'cmp2', 'memory_mb': 1024},
]


def test_table_has_one_row_per_host_and_counts_moves():
    text = report_table(make_plan(HOSTS, MOVES))
    rows = [line for line in text.splitlines() if line.split(' ')[0] in HOSTS]
    assert sorted(r.split()[0] for r in rows) == sorted(HOSTS)
    row = dict((r.split()[0], r.split()) for r in rows)
    # in/out columns come right after the two bars: cmp1 gives two, cmp10 and cmp2 take one each
    assert row['cmp1'][-5:-3] == ['0', '2']
    assert row['cmp10'][-5:-3] == ['1', '0']
    assert 'GiB moved: 3.0' in text  # 2048 + 1024 MiB


def test_table_names_moves_not_done():
    # live_migrate's per-move results carry no size: the report takes it from the plan
    slim = [dict((k, m[k]) for k in ('instance', 'name', 'source', 'destination')) for m in MOVES]
    result = {'moves': [dict(slim[0], result='moved'), dict(slim[1], result='failed', error='No valid host')]}
    text = report_table(make_plan(HOSTS, MOVES), result)
    assert '1 done, 1 not done' in text
    assert 'web-2' in text and 'No valid host' in text
    assert 'GiB moved: 2.0' in text


def test_table_says_why_nothing_moved():
    plan = make_plan(HOSTS, [])
    plan['summary']['reason'] = 'busiest host score 0.40 < min_load 0.50'
    assert 'no move: busiest host score 0.40 < min_load 0.50' in report_table(plan)


def test_svg_is_valid_and_draws_bars_and_arrows():
    result = {'moves': [dict(MOVES[0], result='moved'), dict(MOVES[1], result='aborted')]}
    root = ET.fromstring(report_svg(make_plan(HOSTS, MOVES), result, title='a <run>'))
    ns = '{http://www.w3.org/2000/svg}'
    bars = [r for r in root.iter(ns + 'rect') if r.find(ns + 'title') is not None]
    assert len(bars) == 2 * len(HOSTS)
    arrows = [p for p in root.iter(ns + 'path') if p.get('marker-end')]
    assert [a.get('stroke') for a in arrows] == ['#43a047', '#e53935']
    assert any('a <run>' == (t.text or '') for t in root.iter(ns + 'text'))


def _snapshot(loads):
    """A small real snapshot (validated by the snapshot loader): host -> (cpu, memory, instances)."""
    hosts, instances = [], []
    for name, (cpu, memory, count) in sorted(loads.items()):
        hosts.append({"name": name, "az": "nova", "aggregates": [],
                      "capacity": {"vcpus": 10, "memory_mb": 8192, "disk_gb": 100},
                      "allocation_ratio": {"vcpus": 1.0, "memory_mb": 1.0, "disk_gb": 1.0},
                      "reserved": {"vcpus": 0, "memory_mb": 0, "disk_gb": 0},
                      "load": {"cpu": cpu, "memory": memory}, "load_source": "prometheus"})
        for index in range(count):
            instances.append({"id": "%s-%d" % (name, index), "name": "vm", "host": name,
                              "flavor": {"name": "f", "vcpus": 1, "memory_mb": 512, "disk_gb": 1},
                              "load": {"cpu": None, "memory": None}, "server_groups": []})
    return {"version": 1, "taken_at": "2026-12-07T06:00:00Z", "sources": {}, "hosts": hosts,
            "instances": instances}


def test_measured_figures_score_a_fresh_snapshot_with_the_plans_weights():
    snap = _snapshot({'cmp1': (0.5, 0.25, 2), 'cmp2': (0.25, 0.5, 1)})
    even = measured_figures(snap, {'params': {'weight_cpu': 1.0, 'weight_memory': 1.0}})
    cpu_only = measured_figures(snap, {'params': {'weight_cpu': 1.0, 'weight_memory': 0.0}})
    assert even['hosts']['cmp1'] == {'score': 0.75, 'cpu': 0.5, 'memory': 0.25, 'instances': 2}
    assert cpu_only['hosts']['cmp1']['score'] == 0.5 and cpu_only['hosts']['cmp2']['score'] == 0.25
    assert cpu_only['spread']['ratio'] == 1.0 and even['spread']['ratio'] == 0.0
    assert even['taken_at'] == '2026-12-07T06:00:00Z'
    # a drained host stays out of the spread, as in the drain plan's own figures
    drained = measured_figures(snap, {'params': {}, 'drained_hosts': ['cmp2']})
    assert drained['hosts']['cmp2']['active'] is False and drained['spread']['ratio'] == 0.0


def test_table_and_picture_show_the_measured_after_beside_the_planned_one():
    plan = make_plan(HOSTS, MOVES)
    measured = {'hosts': {'cmp1': {'score': 1.3, 'instances': 6}, 'cmp2': {'score': 1.0, 'instances': 4},
                          'cmp10': {'score': 0.45, 'instances': 1}},
                'spread': {'ratio': 1.89, 'stddev': 0.35, 'max': 1.3}, 'taken_at': '2026-12-07T06:01:00Z'}
    text = report_table(plan, None, measured)
    assert 'measured after' in text.splitlines()[0]
    row = [line for line in text.splitlines() if line.startswith('cmp1 ')][0]
    assert row.split()[-3] == '1.30' and row.split()[-1] == '6'   # measured score, bar, instances
    assert 'spread max/min-1: 3.00 → 1.89   std-dev: 0.40 → 0.35   max: 1.60 → 1.30  (measured at 2026-12-07T06:01:00Z)' in text
    assert '(planned)' in text and 'measured' not in report_table(plan)
    root = ET.fromstring(report_svg(plan, None, measured=measured))
    ns = '{http://www.w3.org/2000/svg}'
    titles = [r.find(ns + 'title').text for r in root.iter(ns + 'rect') if r.find(ns + 'title') is not None]
    assert len(titles) == 3 * len(HOSTS) and 'cmp1 after (measured) 1.30' in titles
    assert any('after (measured)' in (t.text or '') for t in root.iter(ns + 'text'))


def test_a_failed_run_says_so_and_a_lost_result_is_not_read_as_nothing_done():
    plan = make_plan(HOSTS, MOVES)
    failed = {'failed': True, 'msg': 'drain of cmp1 incomplete:\n 1 moved, 1 failed', 'moves': [
        dict(MOVES[0], result='moved'), dict(MOVES[1], result='failed', error='ended failed')]}
    text = report_table(plan, failed)
    assert 'run failed: drain of cmp1 incomplete: 1 moved, 1 failed' in text
    assert 'before it reported its moves' not in text
    lost = report_table(plan, {'failed': True, 'msg': 'MODULE FAILURE'})
    assert 'the run failed before it reported its moves' in lost and 'run failed: MODULE FAILURE' in lost
