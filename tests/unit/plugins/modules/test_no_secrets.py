# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret of a ``cloud`` dict or of a URL reaches what a module prints or logs, success or failure.

main() runs through the real exit_json/fail_json (module_output), so what is checked is the JSON
Ansible receives, ``invocation.module_args`` included (shown at -vvv), and the target's journal.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _lock as lock_mod
from ansible_collections.cloudops.leveller.plugins.module_utils import _openstack
from ansible_collections.cloudops.leveller.plugins.modules import evacuate_host as evacuate_mod
from ansible_collections.cloudops.leveller.plugins.modules import hypervisor_load_info as info_mod
from ansible_collections.cloudops.leveller.plugins.modules import live_migrate as live_mod
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.execute.fake_nova import FakeNova
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, make_cloud)
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import module_output

SECRETS = ('pw-CLOUD-111', 'acs-CLOUD-222', 'tok-CLOUD-333', 'pw-URL-444')
CLOUD = {'auth': {'auth_url': 'http://keystone.test:5000/v3', 'username': 'admin', 'password': SECRETS[0],
                  'project_name': 'admin', 'application_credential_secret': SECRETS[1]},
         'token': SECRETS[2], 'region_name': 'RegionOne'}
PROM_URL = 'https://leveller:%s@prom.test:9090' % SECRETS[3]
NOW = 1795386000.0


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


class PromSession(object):
    """requests.Session for Prometheus: every host at half load; or a connection error."""

    def __init__(self, fail=False):
        self.fail, self.calls = fail, []

    def post(self, url, **kw):
        import requests
        self.calls.append((url, kw))
        if self.fail:
            raise requests.exceptions.ConnectionError('cannot reach %s/api/v1/query' % PROM_URL)

        class R(object):
            status_code = 200
            text = json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': [
                {'metric': {'instance': 'compute%d:9100' % i}, 'value': [NOW, '0.5']} for i in (1, 2)]}})
        return R()


@pytest.fixture
def info(monkeypatch, capsys):
    """hypervisor_load_info over a fake cloud and a fake Prometheus, printing its real output."""
    session = PromSession()
    monkeypatch.setattr(info_mod, 'connect', lambda module: FakeConn(make_cloud(2, 1)))
    monkeypatch.setattr(info_mod, 'validate_snapshot', None)  # the contract is tested elsewhere
    monkeypatch.setattr(info_mod.prom.requests, 'Session', lambda: session)
    for var in ('PROMETHEUS_QUERY_URL', 'LEVELLER_PROMETHEUS_URL', 'OS_LIMIT_TO_AZ'):
        monkeypatch.delenv(var, raising=False)
    run = module_output(monkeypatch, capsys, info_mod, dict(cloud=CLOUD, prometheus_url=PROM_URL, staleness=0))
    run.session = session
    return run


def test_snapshot_result_and_journal_carry_no_secret(info):
    text, result, journal = info({})
    assert not result.get('failed'), result['msg']
    assert_no_secret(text, journal)
    args = result['invocation']['module_args']
    assert args['cloud']['auth']['password'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert args['cloud']['token'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert args['cloud']['auth']['auth_url'] == CLOUD['auth']['auth_url']  # not a secret: kept
    assert args['prometheus_url'] == 'https://leveller:********@prom.test:9090'
    assert result['snapshot']['sources']['prometheus']['url'] == 'https://prom.test:9090'
    assert [h['load_source'] for h in result['snapshot']['hosts']] == ['prometheus', 'prometheus']
    # the credentials of the URL are still used, as basic auth on a URL without them
    url, kw = info.session.calls[0]
    assert url == 'https://prom.test:9090/api/v1/query' and kw['auth'] == ('leveller', SECRETS[3])
    assert 'Invoked with' in journal


def test_failed_snapshot_carries_no_secret(info):
    info.session.fail = True
    text, result, journal = info({})
    assert result['failed'] and result['failure'] == 'unreachable'
    assert 'https://prom.test:9090' in result['msg']
    assert_no_secret(text, journal)


def test_a_secret_in_an_unexpected_error_is_masked(info, monkeypatch):
    def boom(conn, p, validate=None):
        raise RuntimeError('the SDK said: password %s for %s' % (SECRETS[0], PROM_URL))
    monkeypatch.setattr(info_mod.gather_mod, 'gather_all', boom)
    text, result, journal = info({})
    assert result['failed'] and 'the SDK said' in result['msg']
    assert_no_secret(text, journal)


def test_a_cloud_name_is_not_masked(info):
    """Why cloud is not no_log: its name would then be starred wherever it appears."""
    text, result, _journal = info({'cloud': 'leveller'})
    assert result['invocation']['module_args']['cloud'] == 'leveller'


@pytest.mark.parametrize('mod, args', [
    (info_mod, {}),
    (live_mod, {'instance': 'web-1', 'destination': 'c2'}),
    (evacuate_mod, {'host': 'c1'}),
])
def test_argument_errors_carry_no_secret(monkeypatch, capsys, mod, args):
    """The argument check fails inside AnsibleModule(), before the module's own code runs."""
    run = module_output(monkeypatch, capsys, mod)
    text, result, journal = run(dict(args, cloud=CLOUD, prometheus_url=PROM_URL, no_such_option=True))
    assert result['failed'] and 'no_such_option' in result['msg']
    assert_no_secret(text, journal)


@pytest.mark.parametrize('mod, args', [
    (info_mod, {'sources': ['nova']}),
    (live_mod, {'instance': 'web-1', 'destination': 'c2'}),
    (evacuate_mod, {'host': 'c1'}),
])
def test_connection_errors_carry_no_secret(monkeypatch, capsys, mod, args):
    def refuse(cloud=None, **kwargs):
        raise Exception('Unauthorized: %s at https://admin:%s@keystone.test/v3 (token %s)'
                        % (kwargs['auth']['password'], SECRETS[3], kwargs.get('token')))
    monkeypatch.setattr(_openstack.openstack, 'connect', refuse)
    run = module_output(monkeypatch, capsys, mod)
    text, result, journal = run(dict(args, cloud=CLOUD))
    assert result['failed'] and 'Cannot connect to OpenStack' in result['msg']
    assert 'https://keystone.test/v3' in result['msg']
    assert_no_secret(text, journal)


def test_moving_run_result_carries_no_secret(monkeypatch, capsys, tmp_path):
    nova = FakeNova(time.monotonic, duration=0.05)
    nova.add('u1', 'c1', name='web-1')
    monkeypatch.setattr(live_mod, 'connect', lambda module: object())
    monkeypatch.setattr(live_mod, 'Nova', lambda conn: nova)
    monkeypatch.setattr(lock_mod, 'cloud_key_for', lambda conn: 'unit')
    run = module_output(monkeypatch, capsys, live_mod)
    text, result, journal = run({'cloud': CLOUD, 'instance': 'web-1', 'destination': 'c2',
                                 'lock_dir': str(tmp_path), 'poll_interval': 0.01})
    assert not result.get('failed') and result['changed'], result.get('msg')
    assert_no_secret(text, journal)
