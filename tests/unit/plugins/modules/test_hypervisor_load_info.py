# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's contract: seed-000 environment fallbacks, dest in check mode, failure field."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import LevellerError
from ansible_collections.cloudops.leveller.plugins.modules import hypervisor_load_info as mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, make_cloud)


class Exit(Exception):
    def __init__(self, result, failed):
        super(Exit, self).__init__(result)
        self.result, self.failed = result, failed


@pytest.fixture
def run(monkeypatch):
    """Run main() with a fake connection; capture the gather params and the module result."""
    seen = {}

    def fake_gather(conn, p, validate=None):
        seen['params'] = dict(p)
        if seen.get('raise'):
            raise seen['raise']
        return ({'version': 1, 'taken_at': '2026-11-22T22:00:00Z', 'sources': {}, 'hosts': [],
                 'instances': []}, {'hosts': 0}, seen.get('history'))

    def exit_json(self, **kw):
        raise Exit(kw, False)

    def fail_json(self, **kw):
        raise Exit(kw, True)

    monkeypatch.setattr(mod, 'connect', lambda module: FakeConn(make_cloud(1, 1)))
    monkeypatch.setattr(mod.gather_mod, 'gather_all', fake_gather)
    monkeypatch.setattr(AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(AnsibleModule, 'fail_json', fail_json)
    for var in ('PROMETHEUS_QUERY_URL', 'PROMETHEUS_CPU_USED', 'PROMETHEUS_MEM_USED', 'OS_LIMIT_TO_AZ',
                'PROMETHEUS_METRIC_WEIGHT_MEM', 'PROMETHEUS_METRIC_WEIGHT_CPU', 'LEVELLER_PROMETHEUS_URL'):
        monkeypatch.delenv(var, raising=False)

    def runner(args):
        with patch_module_args(args):
            with pytest.raises(Exit) as exc:
                mod.main()
        return exc.value, seen
    runner.seen = seen
    return runner


def test_seed_000_environment_is_accepted(run, monkeypatch):
    monkeypatch.setenv('PROMETHEUS_QUERY_URL', 'http://prometheus:9090/api/v1/query')
    monkeypatch.setenv('PROMETHEUS_CPU_USED', 'leveller:node_cpu_utilisation:ratio_rate5m')
    monkeypatch.setenv('PROMETHEUS_MEM_USED', 'leveller:node_memory_utilisation:ratio')
    monkeypatch.setenv('PROMETHEUS_METRIC_WEIGHT_MEM', '2.0')
    monkeypatch.setenv('PROMETHEUS_METRIC_WEIGHT_CPU', '0.4')
    monkeypatch.setenv('OS_LIMIT_TO_AZ', 'az1,az2')
    result, seen = run({})
    assert not result.failed
    p = seen['params']
    assert p['prometheus_url'] == 'http://prometheus:9090/api/v1/query'
    assert p['query_cpu'] == 'leveller:node_cpu_utilisation:ratio_rate5m'
    assert p['query_memory'] == 'leveller:node_memory_utilisation:ratio'
    assert (p['weight_cpu'], p['weight_memory']) == (0.4, 2.0)
    assert p['scope']['availability_zones'] == ['az1', 'az2']


def test_an_empty_leveller_variable_lets_the_seed_url_through(run, monkeypatch):
    monkeypatch.setenv('LEVELLER_PROMETHEUS_URL', '')
    monkeypatch.setenv('PROMETHEUS_QUERY_URL', 'http://seed:9090/api/v1/query')
    _result, seen = run({})
    assert seen['params']['prometheus_url'] == 'http://seed:9090/api/v1/query'
    monkeypatch.setenv('LEVELLER_PROMETHEUS_URL', 'http://new:9090')
    _result, seen = run({})
    assert seen['params']['prometheus_url'] == 'http://new:9090'


def test_options_win_over_the_environment_and_defaults_apply(run, monkeypatch):
    monkeypatch.setenv('PROMETHEUS_CPU_USED', 'from_env')
    monkeypatch.setenv('OS_LIMIT_TO_AZ', 'az1')
    result, seen = run({'query_cpu': 'from_task', 'scope': {'availability_zones': ['az9']},
                        'prometheus_url': 'http://p'})
    p = seen['params']
    assert p['query_cpu'] == 'from_task' and p['scope']['availability_zones'] == ['az9']
    assert p['query_memory'] == mod.prom.DEFAULT_QUERY_MEMORY
    assert p['sources'] == ['nova', 'prometheus'] and p['staleness'] == 180
    assert not result.failed and result.result['changed'] is False


def test_dest_is_written_in_check_mode_and_nothing_changes(run, tmp_path):
    dest = tmp_path / 'snap.json'
    result, _seen = run({'prometheus_url': 'http://p', 'dest': str(dest), '_ansible_check_mode': True})
    assert not result.failed and result.result['changed'] is False
    assert result.result['dest'] == str(dest)
    assert json.loads(dest.read_text())['version'] == 1
    assert oct(dest.stat().st_mode & 0o777) == '0o600'


def test_dest_in_a_missing_directory_fails_before_reading(run, tmp_path):
    result, seen = run({'prometheus_url': 'http://p', 'dest': str(tmp_path / 'no' / 'snap.json')})
    assert result.failed and result.result['failure'] == 'configuration'
    assert 'params' not in seen


def test_failure_class_is_returned(run):
    run.seen['raise'] = LevellerError('Prometheus at http://p is unreachable', 'unreachable')
    result, _seen = run({'prometheus_url': 'http://p'})
    assert result.failed
    assert result.result['failure'] == 'unreachable' and 'unreachable' in result.result['msg']
    assert 'snapshot' not in result.result


def test_secrets_are_no_log():
    spec = mod.argument_spec()
    assert spec['prometheus_token']['no_log'] and spec['prometheus_password']['no_log']
    assert spec['auth']['no_log']


def test_libvirt_only_needs_no_openstack_connection(run, monkeypatch):
    def no_cloud(module):
        raise AssertionError('connect() called without nova in sources')
    monkeypatch.setattr(mod, 'connect', no_cloud)
    result, seen = run({'sources': ['libvirt'], 'libvirt_uris': {'kvm1': 'test:///default'},
                        'libvirt_availability_zone': 'rack1', 'libvirt_allocation_ratio': {'vcpus': 4}})
    assert not result.failed
    p = seen['params']
    assert p['libvirt_allocation_ratio'] == {'vcpus': 4.0, 'memory_mb': 1.0, 'disk_gb': 1.0}
    assert p['libvirt_availability_zone'] == 'rack1' and p['cloud'] is None


@pytest.mark.parametrize('args, words', [
    ({'sources': ['prometheus'], 'prometheus_url': 'http://p'}, 'sources must include nova'),
    ({'sources': ['libvirt'], 'libvirt_uris': {'kvm1': 'test:///default'},
      'libvirt_allocation_ratio': {'vcpus': 0}}, 'libvirt_allocation_ratio.vcpus'),
])
def test_libvirt_only_bad_options_fail_before_reading(run, args, words):
    result, seen = run(args)
    assert result.failed and result.result['failure'] == 'configuration'
    assert words in result.result['msg'] and 'params' not in seen


def test_libvirt_only_real_run_on_the_test_driver(monkeypatch, tmp_path):
    lv = pytest.importorskip('ansible_collections.cloudops.leveller.plugins.module_utils._sources.libvirt')
    if not lv.HAS_LIBVIRT:
        pytest.skip('libvirt-python is not installed')

    def exit_json(self, **kw):
        raise Exit(kw, False)

    def fail_json(self, **kw):
        raise Exit(kw, True)

    monkeypatch.setattr(mod, 'connect', lambda module: pytest.fail('no cloud in libvirt-only mode'))
    monkeypatch.setattr(AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(AnsibleModule, 'fail_json', fail_json)
    monkeypatch.delenv('OS_LIMIT_TO_AZ', raising=False)
    dest = tmp_path / 'snap.json'
    with patch_module_args({'sources': ['libvirt'], 'libvirt_uris': {'kvm1': 'test:///default'},
                            'libvirt_sample_interval': 0.2, 'dest': str(dest)}):
        with pytest.raises(Exit) as exc:
            mod.main()
    result = exc.value.result
    assert not exc.value.failed, result
    snap = result['snapshot']
    assert [(h['name'], h['capacity']['vcpus'], h['load_source']) for h in snap['hosts']] == [('kvm1', 16, 'libvirt')]
    assert [i['name'] for i in snap['instances']] == ['test']
    assert json.loads(dest.read_text())['hosts'][0]['capacity_unknown'] == ['disk_gb']
    with patch_module_args({'sources': ['libvirt'], 'libvirt_uris': {'kvm1': 'bogus:///system'}}):
        with pytest.raises(Exit) as exc:
            mod.main()
    assert exc.value.failed and exc.value.result['failure'] == 'configuration'
    assert 'bogus' in exc.value.result['msg'] and 'snapshot' not in exc.value.result


HISTORY = {'start': 1795380000.0, 'step': 300, 'times': 3, 'queries': 2,
           'hosts': {'compute1': {'cpu': [0.1, None, 0.3], 'memory': [0.5, 0.5, 0.5]}},
           'instances': {}, 'missing': {'hosts': [], 'instances': 0}}


def test_load_history_is_returned_whole_without_history_dest(run):
    run.seen['history'] = HISTORY
    result, seen = run({'prometheus_url': 'http://p', 'at': '-1h', 'history': {'start': '-2h'}})
    assert not result.failed, result.result
    assert result.result['load_history'] == HISTORY
    assert 'load_history_dest' not in result.result
    assert seen['params']['history'] == {'start': '-2h', 'end': None, 'step': 300}
    assert seen['params']['at'] == '-1h'


def test_history_dest_gets_the_series_and_the_result_only_a_summary(run, tmp_path):
    run.seen['history'] = HISTORY
    dest = tmp_path / 'history.json'
    result, _seen = run({'prometheus_url': 'http://p', 'history': {'start': '-2h'},
                         'history_dest': str(dest), '_ansible_check_mode': True})
    assert not result.failed, result.result
    assert 'load_history' not in result.result
    assert result.result['load_history_dest'] == str(dest)
    assert result.result['load_history_summary'] == {'start': 1795380000.0, 'step': 300, 'times': 3,
                                                     'queries': 2, 'hosts': 1, 'instances': 0}
    assert json.loads(dest.read_text()) == HISTORY
    assert oct(dest.stat().st_mode & 0o777) == '0o600'


@pytest.mark.parametrize('args, words', [
    ({'at': '+2h'}, 'at: '),
    ({'at': '2099-01-01T00:00:00Z'}, 'at is 2099-01-01T00:00:00Z'),
    ({'at': 'tomorrow'}, 'ISO 8601'),
    ({'at': '2026-12-06T10:00:00'}, 'add Z'),
    ({'at': '-1h', 'sources': ['nova', 'libvirt'], 'libvirt_uris': {'compute1': 'test:///default'}}, 'libvirt'),
    ({'history': {'start': '-1h', 'step': 0}}, 'history.step'),
    ({'history': {'start': '-40d'}}, 'more than 31'),
    ({'history': {'start': '-1h'}, 'sources': ['nova']}, 'add prometheus to sources'),
    ({'history_dest': 'history.json'}, 'history'),
])
def test_bad_at_or_history_fails_before_any_connection(run, monkeypatch, args, words):
    monkeypatch.setattr(mod, 'connect', lambda module: pytest.fail('connected despite a bad option'))
    args = dict(args, prometheus_url='http://p')
    result, seen = run(args)
    assert result.failed and words in result.result['msg'], result.result
    assert 'params' not in seen
