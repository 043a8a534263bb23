# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_metrics end to end in-process: targets, check mode, a target that fails, no secret in any output."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest
import requests
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings

from ansible_collections.cloudops.leveller.plugins.module_utils import _run_metrics as rm
from ansible_collections.cloudops.leveller.plugins.modules import run_metrics
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import (
    module_output, module_runner)

SECRETS = ("pw-URL-111", "pw-OPT-222", "tok-OPT-333")
PLAN = {"version": 1, "strategy": "balance", "snapshot_taken_at": "2026-12-07T05:59:00Z",
        "moves": [{"instance": "u1", "source": "c1", "destination": "c2", "memory_mb": 1024}]}
DONE = {"changed": True, "moves": [{"instance": "u1", "result": "moved", "seconds": 1.5}], "totals": {"moved": 1}}
FAILED = {"changed": False, "failed": True, "moves": [{"instance": "u1", "result": "failed", "seconds": 9.0}]}


class FakePushgateway(object):
    """requests.Session standing in for a Pushgateway 1.5: PUT replaces a group, the API lists them."""

    def __init__(self):
        self.groups, self.calls, self.down = {}, [], False

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        if self.down:
            raise requests.exceptions.ConnectionError('cannot reach %s' % url)
        path = url.partition('/metrics/job/')[2]
        if method == 'PUT':
            parts = path.split('/')
            key = dict(zip(['job'] + parts[1::2], [parts[0]] + parts[2::2]))
            self.groups[json.dumps(key, sort_keys=True)] = rm.parse_exposition(kw['data'].decode('utf-8'))
            return Answer(200, '')
        data = []
        for key, samples in self.groups.items():
            group = {'labels': json.loads(key)}
            for name, labels, value in samples:
                group.setdefault(name, {'metrics': []})['metrics'].append(
                    {'labels': dict(labels, instance='', **json.loads(key)), 'value': repr(value)})
            data.append(group)
        return Answer(200, json.dumps({'status': 'success', 'data': data}))


class Answer(object):
    def __init__(self, status_code, text):
        self.status_code, self.text = status_code, text


@pytest.fixture(autouse=True)
def no_warnings_from_before(monkeypatch):
    # Ansible keeps a module's warnings in a process-wide store until it exits
    monkeypatch.setattr(warnings, '_global_warnings', {})
    # ...unless controller code was imported in this process (the action plugin tests): then
    # warn() goes to the controller's Display. A module never runs on the controller side.
    monkeypatch.setattr(module_utils_internal, 'is_controller', False)


@pytest.fixture
def gateway(monkeypatch):
    fake = FakePushgateway()
    monkeypatch.setattr(rm.requests, 'Session', lambda: fake)
    monkeypatch.delenv('LEVELLER_PUSHGATEWAY_URL', raising=False)
    return fake


@pytest.fixture
def run(monkeypatch, gateway):
    return module_runner(monkeypatch, run_metrics, dict(playbook='balance', plan=PLAN))


def value(text, line_start):
    return [line.rsplit(' ', 1)[1] for line in text.splitlines() if line.startswith(line_start + ' ')][0]


def test_each_textfile_run_counts_on_the_previous_file(run, tmp_path):
    first = run(dict(result=DONE, textfile_dir=str(tmp_path)))
    second = run(dict(result=FAILED, textfile_dir=str(tmp_path)))
    assert not first.failed and not second.failed and first.result['changed'] and second.result['changed']
    path = str(tmp_path / 'cloudops_leveller_balance.prom')
    assert second.result['textfile']['path'] == path and second.result['textfile']['written']
    assert first.result['textfile']['found'] is False and second.result['textfile']['found'] is True
    text = open(path).read()
    assert text == second.result['textfile']['text']
    assert value(text, 'cloudops_leveller_runs_total{playbook="balance",result="success"}') == '1'
    assert value(text, 'cloudops_leveller_runs_total{playbook="balance",result="failed"}') == '1'
    assert value(text, 'cloudops_leveller_last_run_success{playbook="balance"}') == '0'
    assert value(text, 'cloudops_leveller_last_success_timestamp_seconds{playbook="balance"}') == \
        value(first.result['textfile']['text'], 'cloudops_leveller_last_run_timestamp_seconds{playbook="balance"}')
    assert second.result['msg'].startswith('run balance (failed): write %s' % path)
    assert second.result['pushgateway'] is None


def test_each_push_counts_on_the_group_read_back(run, gateway):
    args = dict(result=DONE, pushgateway_url='http://pg.test:9091', labels={'cloud': 'prod'})
    first, second = run(args), run(args)
    assert first.result['pushgateway']['found'] is False and second.result['pushgateway']['found'] is True
    assert second.result['pushgateway']['pushed'] and second.result['changed']
    assert second.result['pushgateway']['url'] == 'http://pg.test:9091/metrics/job/cloudops_leveller/playbook/balance/cloud/prod'
    assert second.result['pushgateway']['group'] == {'job': 'cloudops_leveller', 'playbook': 'balance', 'cloud': 'prod'}
    text = second.result['pushgateway']['text']
    assert value(text, 'cloudops_leveller_runs_total{playbook="balance",cloud="prod",result="success"}') == '2'
    assert value(text, 'cloudops_leveller_run_moves_total{playbook="balance",cloud="prod",state="done"}') == '2'
    assert [c[0] for c in gateway.calls] == ['GET', 'PUT', 'GET', 'PUT']


def test_the_url_falls_back_to_the_environment_and_an_empty_url_means_none(run, gateway, monkeypatch, tmp_path):
    monkeypatch.setenv('LEVELLER_PUSHGATEWAY_URL', 'http://env-pg.test:9091')
    out = run(dict(result=DONE))
    assert out.result['pushgateway']['pushed'] and gateway.calls[-1][1].startswith('http://env-pg.test:9091/')
    out = run(dict(result=DONE, pushgateway_url='', textfile_dir=str(tmp_path)))
    assert out.result['pushgateway'] is None and out.result['textfile']['written']


def test_check_mode_reads_and_renders_but_sends_nothing(run, gateway, tmp_path):
    out = run(dict(result=DONE, pushgateway_url='http://pg.test:9091', textfile_dir=str(tmp_path), _ansible_check_mode=True))
    assert not out.failed and out.result['changed']
    assert [c[0] for c in gateway.calls] == ['GET'] and gateway.groups == {}
    assert os.listdir(str(tmp_path)) == []
    assert not out.result['pushgateway']['pushed'] and not out.result['textfile']['written']
    assert 'cloudops_leveller_runs_total{playbook="balance",result="success"} 1' in out.result['textfile']['text']
    assert out.result['msg'].startswith('run balance (success): would push to http://pg.test:9091/')


def test_a_pushgateway_that_is_down_warns_and_does_not_fail_the_run(run, gateway, tmp_path):
    gateway.down = True
    out = run(dict(result=DONE, pushgateway_url='http://pg.test:9091'))
    assert not out.failed and out.result['changed'] is False
    assert len(warnings.get_warning_messages()) == 1
    assert 'Pushgateway at http://pg.test:9091 is unreachable' in warnings.get_warning_messages()[0]
    warnings._global_warnings.clear()
    assert out.result['pushgateway']['pushed'] is False and out.result['pushgateway']['text'] is None
    # the textfile still gets written: changed, with the warning for the Pushgateway
    out = run(dict(result=DONE, pushgateway_url='http://pg.test:9091', textfile_dir=str(tmp_path)))
    assert not out.failed and out.result['changed'] and out.result['textfile']['written']
    assert len(warnings.get_warning_messages()) == 1


def test_fail_on_error_fails_with_the_target_named(run, gateway):
    gateway.down = True
    out = run(dict(result=DONE, pushgateway_url='http://pg.test:9091', fail_on_error=True))
    assert out.failed and out.result['failure'] == 'unreachable'
    assert 'Pushgateway at http://pg.test:9091 is unreachable while reading the previous values' in out.result['msg']


def test_a_symlinked_textfile_is_refused_with_a_warning(run, tmp_path):
    (tmp_path / 'cloudops_leveller_balance.prom').symlink_to(tmp_path / 'elsewhere')
    out = run(dict(result=DONE, textfile_dir=str(tmp_path)))
    assert not out.failed and out.result['changed'] is False
    assert 'is a symlink' in out.result['textfile']['error'] and 'is a symlink' in warnings.get_warning_messages()[0]
    assert not os.path.exists(str(tmp_path / 'elsewhere'))


@pytest.fixture
def printed(monkeypatch, capsys, gateway):
    return module_output(monkeypatch, capsys, run_metrics, dict(playbook='balance', plan=PLAN, result=DONE))


@pytest.mark.parametrize('args', [
    dict(pushgateway_url='https://leveller:%s@pg.test:9091' % SECRETS[0]),
    dict(pushgateway_url='https://pg.test:9091', username='leveller', password=SECRETS[1]),
    dict(pushgateway_url='https://pg.test:9091', token=SECRETS[2]),
])
@pytest.mark.parametrize('down', [False, True])
def test_no_secret_in_the_output_or_the_journal(printed, gateway, args, down):
    gateway.down = down
    text, result, journal = printed(args)
    assert not result.get('failed'), result['msg']
    for secret in SECRETS:
        assert secret not in text and secret not in journal
    assert result['pushgateway']['url'].startswith('https://pg.test:9091/metrics/job/')
    assert bool(result.get('warnings')) is down
    # the credentials are still used
    assert gateway.calls[0][2]['auth'] or gateway.calls[0][2]['headers'].get('Authorization')
