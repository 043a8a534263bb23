# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret in what is echoed: URL redaction, the secrets of a cloud dict, Prometheus and libvirt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    LevellerError, cloud_secrets, redact_url, url_secrets)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import gather
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import libvirt as lv
from ansible_collections.cloudops.leveller.plugins.module_utils._sources import prometheus as prom
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.sources.fake_cloud import (
    FakeConn, FakePrometheus, make_cloud)

SECRET = 'pw-SECRET-123'


@pytest.mark.parametrize('given, shown', [
    ('https://user:%s@prom:9090/prefix' % SECRET, 'https://prom:9090/prefix'),
    ('http://%s@prom:9090' % SECRET, 'http://prom:9090'),  # a bare user part is often a token
    ('qemu+ssh://nova@compute1/system', 'qemu+ssh://nova@compute1/system'),  # the login stays
    ('qemu+ssh://nova:%s@compute1/system?keyfile=/k' % SECRET, 'qemu+ssh://nova@compute1/system?keyfile=/k'),
    ('https://prom/api?token=%s&x=1' % SECRET, 'https://prom/api?token=********&x=1'),
    ('https://user:p@ss%s@prom:9090/' % SECRET, 'https://prom:9090/'),  # '@' in the password
    ("failed at 'http://a:%s@h:1/q' and https://b:%s@k/" % (SECRET, SECRET), "failed at 'http://h:1/q' and https://k/"),
    ('test:///default', 'test:///default'),
    ('no URL here: user:pass', 'no URL here: user:pass'),
    ('', ''),
    (None, None),
])
def test_redact_url(given, shown):
    assert redact_url(given) == shown


def test_url_secrets_finds_passwords_raw_and_decoded_in_any_structure():
    found = url_secrets({'a': ['https://u:p%40ss@h', {'b': 'qemu+ssh://nova:lv-pw@h/system'}],
                         'c': 'qemu+ssh://nova@h/system', 'd': 'https://h/?api_key=k3y', 'e': 3})
    assert found == {'p%40ss', 'p@ss', 'lv-pw', 'k3y'}
    assert url_secrets('http://plain/') == set()


def test_cloud_secrets_takes_secret_keys_at_any_depth_and_nothing_else():
    cloud = {'auth': {'auth_url': 'http://k:5000/v3', 'username': 'admin', 'password': 'pw1',
                      'project_name': 'admin', 'application_credential_id': 'ac-id',
                      'application_credential_secret': 'acs', 'passcode': 1234, 'totp': ''},
             'token': 'tok', 'key': '/etc/k.pem', 'region_name': 'RegionOne', 'verify': True,
             'profiles': [{'client_secret': 'cs'}], 'secrets': {'a': 's1', 'b': ['s2']}}
    assert cloud_secrets(cloud) == {'pw1', 'acs', '1234', 'tok', '/etc/k.pem', 'cs', 's1', 's2'}
    assert cloud_secrets('leveller') == set() and cloud_secrets(None) == set()


class Session(object):
    def __init__(self, exc=None):
        self.exc, self.calls = exc, []

    def post(self, url, **kw):
        self.calls.append((url, kw))
        if self.exc:
            raise self.exc

        class R(object):
            status_code = 200
            text = json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': []}})
        return R()


def test_prometheus_userinfo_becomes_basic_auth_and_is_never_echoed():
    sess = Session()
    client = prom.PrometheusClient('https://leveller:%s@prom:9090/' % SECRET, session=sess)
    client.query('cpu', 'up')
    url, kw = sess.calls[0]
    assert client.base == 'https://prom:9090' and url == 'https://prom:9090/api/v1/query'
    assert kw['auth'] == ('leveller', SECRET)
    # percent-encoded credentials are decoded; explicit options win over the URL
    enc = prom.PrometheusClient('https://u%40x:p%3Aw@prom', session=Session())
    assert enc.auth == ('u@x', 'p:w')
    explicit = prom.PrometheusClient('https://u:%s@prom' % SECRET, username='op', password='o', session=Session())
    assert explicit.auth == ('op', 'o')
    token = prom.PrometheusClient('https://u:%s@prom' % SECRET, token='t', session=Session())
    assert token.auth is None


def test_prometheus_errors_do_not_echo_the_userinfo():
    import requests
    url = 'https://leveller:%s@prom:9090' % SECRET
    client = prom.PrometheusClient(url, session=Session(
        exc=requests.exceptions.ConnectionError('cannot reach %s/api/v1/query' % url)))
    with pytest.raises(LevellerError) as err:
        client.query('cpu', 'up')
    assert SECRET not in str(err.value) and 'https://prom:9090' in str(err.value)
    with pytest.raises(LevellerError) as err:
        prom.api_base('ftp://leveller:%s@prom' % SECRET)
    assert SECRET not in str(err.value) and 'ftp://leveller@prom' in str(err.value)
    with pytest.raises(LevellerError) as err:
        prom.parse_response('cpu', 'up', 502, 'bad gateway for %s' % url, client.base)
    assert SECRET not in str(err.value)


def test_libvirt_uri_errors_do_not_echo_a_password():
    with pytest.raises(LevellerError) as err:
        lv.check_uri('kvm1', 'bogus+ssh://root:%s@kvm1/system' % SECRET)
    assert SECRET not in str(err.value) and 'bogus+ssh://root@kvm1/system' in str(err.value)


def test_snapshot_sources_carry_no_userinfo_password(monkeypatch):
    """sources.prometheus.url and sources.libvirt.uris are stored and shared: no password."""
    client = FakePrometheus({prom.DEFAULT_QUERY_CPU: [], prom.DEFAULT_QUERY_MEMORY: []})
    client.base = 'https://leveller:%s@prom:9090' % SECRET
    monkeypatch.setattr(lv, 'HAS_LIBVIRT', True)
    measured = dict((h, ({'cpu': 0.1, 'memory': 0.2}, {}, {})) for h in ('compute1', 'compute2'))
    monkeypatch.setattr(lv, 'read_hosts', lambda wanted, interval=5.0: measured)
    snap, _summary = gather.gather(
        FakeConn(make_cloud(2, 1)),
        {'sources': ['nova', 'prometheus', 'libvirt'], 'scope': {}, 'prometheus_url': 'unused',
         'staleness': 0, 'allow_missing_load': True, 'history_hours': 168,
         'libvirt_uris': {'compute1': 'qemu+ssh://nova:%s@compute1/system' % SECRET,
                          'compute2': 'qemu+tcp://compute2/system'}},
        now=1795386000.0, prometheus_client=client)
    assert SECRET not in json.dumps(snap)
    assert snap['sources']['prometheus']['url'] == 'https://prom:9090'
    assert snap['sources']['libvirt']['uris'] == {'compute1': 'qemu+ssh://nova@compute1/system',
                                                  'compute2': 'qemu+tcp://compute2/system'}
