# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fence option and the drivers: validation, secrets, and sushy / pyghmi over real sockets."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import time

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _fence
from ansible_collections.cloudops.leveller.plugins.module_utils._fence import (
    FenceError, IpmiFence, RedfishFence, fence_argument_spec, fence_secrets, make_fence, scrub)
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.recovery.bmc_endpoints import (
    IpmiBMC, RedfishBMC, free_udp_port)
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.recovery.fakes import SECRET

# Both drivers are built only when their library is there (requirements.txt lists them).
pytest.importorskip('sushy')
pytest.importorskip('pyghmi')

REDFISH = {'driver': 'redfish', 'address': 'bmc7.example.net', 'username': 'admin', 'password': SECRET,
           'system_id': 'abc-1'}
IPMI = {'driver': 'ipmi', 'address': '10.0.0.7', 'username': 'admin', 'password': SECRET}


def spec(base, **change):
    out = dict(base)
    for key, value in change.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()


# -- make_fence: what is accepted ------------------------------------------------------------

@pytest.mark.parametrize('address, port, url', [
    ('bmc7.example.net', None, 'https://bmc7.example.net'),
    ('bmc7.example.net', 8443, 'https://bmc7.example.net:8443'),
    ('bmc7.example.net:8443', None, 'https://bmc7.example.net:8443'),
    ('http://127.0.0.1:8000', None, 'http://127.0.0.1:8000'),
    ('http://127.0.0.1:8000/', 8000, 'http://127.0.0.1:8000'),
    ('https://[fd00::7]', None, 'https://[fd00::7]'),
])
def test_redfish_address_forms(address, port, url):
    fence = make_fence(spec(REDFISH, address=address, port=port))
    assert isinstance(fence, RedfishFence) and fence.base_url == url


@pytest.mark.parametrize('system_id, path', [
    ('abc-1', '/redfish/v1/Systems/abc-1'),
    ('/redfish/v1/Systems/abc-1', '/redfish/v1/Systems/abc-1'),
    ('/redfish/v1/Systems/abc-1/', '/redfish/v1/Systems/abc-1'),
])
def test_redfish_system_id_forms(system_id, path):
    assert make_fence(spec(REDFISH, system_id=system_id)).system_path == path


def test_redfish_defaults_and_tls_choices(tmp_path):
    fence = make_fence(REDFISH)
    assert fence.verify is True and fence.fence_timeout == 60 and fence.driver == 'redfish'
    assert make_fence(spec(REDFISH, verify='no')).verify is False
    ca = tmp_path / 'ca.pem'
    ca.write_text(u'-----BEGIN CERTIFICATE-----\n')
    fence = make_fence(spec(REDFISH, ca=str(ca), fence_timeout='90'))
    assert fence.verify == str(ca) and fence.fence_timeout == 90
    assert 'CA %s' % ca in fence.describe()


def test_ipmi_defaults():
    fence = make_fence(IPMI)
    assert isinstance(fence, IpmiFence) and fence.port == 623 and fence.fence_timeout == 60
    assert make_fence(spec(IPMI, port=6230)).port == 6230


def test_unset_suboptions_given_as_none_are_absent():
    full = dict((k, None) for k in fence_argument_spec())
    full.update(IPMI)
    assert make_fence(full).port == 623


# -- make_fence: what is refused, and how it is said --------------------------------------------

@pytest.mark.parametrize('given, words', [
    (spec(REDFISH, driver=_DROP), "fence.driver must be one of redfish, ipmi (got None)"),
    (spec(REDFISH, driver='ilo'), "fence.driver must be one of redfish, ipmi (got 'ilo')"),
    (spec(REDFISH, address=_DROP), 'fence.address is required'),
    (spec(REDFISH, address=''), 'fence.address must be a non-empty string'),
    (spec(REDFISH, address='bmc 7'), 'fence.address must not contain spaces'),
    (spec(REDFISH, username=_DROP), 'fence.username is required'),
    (spec(REDFISH, password=_DROP), 'fence.password is required'),
    (spec(REDFISH, password=''), 'fence.password must be a non-empty string'),
    (spec(REDFISH, password=1234), 'fence.password must be a non-empty string'),
    (spec(REDFISH, system_id=_DROP), 'fence.system_id is required'),
    (spec(REDFISH, system_id='a/b'), 'fence.system_id must be a system id or /redfish/v1/Systems/<id>'),
    (spec(REDFISH, system_id='/redfish/v1/Systems/'), 'fence.system_id names no system'),
    (spec(REDFISH, port=0), 'fence.port must be a whole number from 1 to 65535 (got 0)'),
    (spec(REDFISH, port=70000), 'fence.port must be a whole number from 1 to 65535'),
    (spec(REDFISH, port=True), 'fence.port must be a whole number'),
    (spec(REDFISH, port='http'), "fence.port must be a whole number from 1 to 65535 (got 'http')"),
    (spec(REDFISH, port=623.5), 'fence.port must be a whole number'),
    (spec(REDFISH, address='bmc7:8443', port=443), 'fence.port is 443 but fence.address says port 8443'),
    (spec(REDFISH, address='ftp://bmc7'), 'fence.address must be a host name, host:port or an http(s):// URL'),
    (spec(REDFISH, address='https://bmc7/redfish/v1'), 'fence.address must name the BMC only, without a path'),
    (spec(REDFISH, address='https://bmc7:99999'), 'fence.address has a bad port'),
    (spec(REDFISH, fence_timeout=0), 'fence.fence_timeout must be a number from 1 to 3600 (got 0)'),
    (spec(REDFISH, fence_timeout=7200), 'fence.fence_timeout must be a number from 1 to 3600'),
    (spec(REDFISH, fence_timeout='soon'), 'fence.fence_timeout must be a number'),
    (spec(REDFISH, verify='maybe'), "fence.verify must be true or false (got 'maybe')"),
    (spec(REDFISH, ca='/nonexistent/ca.pem'), 'fence.ca names no file: /nonexistent/ca.pem'),
    (spec(REDFISH, ca='/etc/hostname', verify=False), 'fence.ca is set but fence.verify is false'),
    (spec(IPMI, system_id='x'), 'fence.system_id is only used with driver redfish: remove it for driver ipmi'),
    (spec(IPMI, verify=False), 'fence.verify is only used with driver redfish'),
    (spec(IPMI, address='https://10.0.0.7'), 'fence.address must be the host name or IP address of the IPMI BMC'),
    (spec(IPMI, port=-1), 'fence.port must be a whole number from 1 to 65535'),
])
def test_bad_fence_options_name_the_field_and_the_fix(given, words):
    with pytest.raises(FenceError) as info:
        make_fence(given)
    assert words in str(info.value)
    assert info.value.failure == 'configuration'
    assert SECRET not in str(info.value)


def test_unknown_keys_are_named_but_their_values_never_shown():
    with pytest.raises(FenceError) as info:
        make_fence(spec(IPMI, passwd='hunter2-other', bmc_user='x'))
    text = str(info.value)
    assert text.startswith('fence: unknown key(s) bmc_user, passwd; the keys are driver, address, port')
    assert 'hunter2-other' not in text and SECRET not in text


def test_credentials_in_the_address_are_refused_without_echoing_them():
    for address in ('https://admin:%s@bmc7' % SECRET, 'admin:%s@bmc7' % SECRET):
        with pytest.raises(FenceError) as info:
            make_fence(spec(REDFISH, address=address))
        assert 'must not carry credentials' in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(FenceError) as info:
        make_fence(spec(IPMI, address='admin:%s@10.0.0.7' % SECRET))
    assert SECRET not in str(info.value)


def test_the_password_put_in_another_field_is_scrubbed():
    with pytest.raises(FenceError) as info:
        make_fence(spec(REDFISH, system_id='a/%s' % SECRET))
    assert SECRET not in str(info.value) and '********' in str(info.value)


@pytest.mark.parametrize('given', [None, 'redfish', ['redfish']])
def test_a_fence_option_that_is_not_a_dict(given):
    with pytest.raises(FenceError, match='fence must be a dict'):
        make_fence(given)


@pytest.mark.parametrize('driver, flag, package', [('redfish', 'HAS_SUSHY', 'sushy'), ('ipmi', 'HAS_PYGHMI', 'pyghmi')])
def test_a_missing_library_names_the_pip_package(monkeypatch, driver, flag, package):
    monkeypatch.setattr(_fence, flag, False)
    with pytest.raises(FenceError) as info:
        make_fence(REDFISH if driver == 'redfish' else IPMI)
    assert 'needs the Python library %s' % package in str(info.value)
    assert 'pip install %s' % package in str(info.value)
    assert info.value.failure == 'configuration'
    assert _fence.missing_library(driver)[0] == package


def test_describe_and_repr_never_hold_the_password():
    for fence in (make_fence(REDFISH), make_fence(spec(REDFISH, verify=False)), make_fence(IPMI)):
        assert SECRET not in fence.describe() and SECRET not in repr(fence)
        assert 'admin' in fence.describe()
    assert make_fence(IPMI).describe() == 'ipmi BMC 10.0.0.7 port 623 (user admin)'
    assert make_fence(REDFISH).describe() == 'redfish BMC https://bmc7.example.net system /redfish/v1/Systems/abc-1 (user admin)'


def test_fence_secrets_and_the_argument_spec():
    assert fence_secrets(spec(IPMI, api_token='t0k')) == {SECRET, 't0k'}
    assert fence_secrets(None) == set()
    assert fence_argument_spec()['password']['no_log'] is True
    assert sorted(fence_argument_spec()) == sorted(_fence.FENCE_KEYS)


def test_scrub():
    assert scrub('a %s b %s' % (SECRET, SECRET), [SECRET, '', None]) == 'a ******** b ********'
    assert scrub('nothing', []) == 'nothing'


# -- RedfishFence through sushy, against a small Redfish service ---------------------------------

@pytest.fixture
def redfish():
    bmc = RedfishBMC(username='admin', password=SECRET)
    yield bmc
    bmc.close()


def redfish_fence(bmc, **change):
    given = dict(address=bmc.url, system_id='sys-1', fence_timeout=5)
    given.update(change)
    return make_fence(spec(REDFISH, **given))


def test_redfish_reads_and_forces_off(redfish):
    redfish.off_after = 1
    fence = redfish_fence(redfish)
    assert fence.power_state() == 'on'
    fence.power_off()
    assert redfish.resets == ['ForceOff']
    assert fence.power_state() == 'on'  # PoweringOff still has power
    assert fence.power_state() == 'off'
    fence.close()
    fence.close()


def test_redfish_bad_password_is_a_permission_error_without_the_password(redfish):
    fence = redfish_fence(redfish, password='wrong-%s' % SECRET)
    with pytest.raises(FenceError) as info:
        fence.power_state()
    assert info.value.failure == 'permission' and 'check fence.username and fence.password' in str(info.value)
    assert SECRET not in str(info.value)


def test_redfish_unknown_system_is_a_configuration_error(redfish):
    fence = redfish_fence(redfish, system_id='sys-9')
    with pytest.raises(FenceError) as info:
        fence.power_state()
    assert info.value.failure == 'configuration' and 'check fence.system_id' in str(info.value)


def test_redfish_without_forceoff_sends_no_other_reset(redfish):
    redfish.allowed = ['On', 'GracefulShutdown', 'ForceRestart']
    fence = redfish_fence(redfish)
    with pytest.raises(FenceError) as info:
        fence.power_off()
    assert 'does not offer ForceOff' in str(info.value) and 'no other reset type is used' in str(info.value)
    assert redfish.resets == []


def test_redfish_unreachable_fails_fast_as_unreachable():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    fence = make_fence(spec(REDFISH, address='http://127.0.0.1:%d' % port, fence_timeout=5))
    started = time.time()
    with pytest.raises(FenceError) as info:
        fence.power_state()
    assert info.value.failure == 'unreachable' and 'cannot connect' in str(info.value)
    assert time.time() - started < 10
    assert SECRET not in str(info.value)


# -- IpmiFence through pyghmi, against pyghmi's BMC in a child process ----------------------------

@pytest.fixture(scope='module')
def ipmi():
    bmc = IpmiBMC(username='admin', password=SECRET)
    yield bmc
    bmc.close()


def test_ipmi_reads_and_powers_off_hard(ipmi):
    fence = make_fence(spec(IPMI, address='127.0.0.1', port=ipmi.port))
    assert fence.power_state() == 'on'
    fence.power_off()
    assert fence.power_state() == 'off'
    assert ipmi.orders() == ['power_off']  # chassis power down, never the soft shutdown or a reset
    fence.close()
    fence.close()


def test_ipmi_bad_password_is_a_permission_error_without_the_password(ipmi):
    fence = make_fence(spec(IPMI, address='127.0.0.1', port=ipmi.port, password='wrong-%s' % SECRET))
    with pytest.raises(FenceError) as info:
        fence.power_state()
    assert info.value.failure == 'permission' and SECRET not in str(info.value)


def test_ipmi_no_answer_is_unreachable():
    fence = make_fence(spec(IPMI, address='127.0.0.1', port=free_udp_port()))
    with pytest.raises(FenceError) as info:
        fence.power_state()
    assert info.value.failure == 'unreachable' and 'cannot log in' in str(info.value)
    assert 'no answer from the BMC' in str(info.value) and SECRET not in str(info.value)


def test_a_silent_ipmi_call_is_abandoned_at_its_deadline(monkeypatch):
    """pyghmi has no timeout of its own: a call that never returns is cut off, the BMC unreachable."""
    import threading
    release = threading.Event()

    class Hanging(object):
        def __init__(self, **kwargs):
            pass

        def get_power(self):
            release.wait(30)
            return {'powerstate': 'on'}

    monkeypatch.setattr(_fence, 'HAS_PYGHMI', True)
    monkeypatch.setattr(_fence, 'ipmi_command', type('M', (), {'Command': Hanging}), raising=False)
    fence = _fence.IpmiFence('127.0.0.1', 'admin', SECRET, port=16299, fence_timeout=0.3)
    fence.min_call_seconds = 0.3
    started = time.monotonic()
    try:
        with pytest.raises(_fence.FenceError) as exc:
            fence.power_state()
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert exc.value.failure == 'unreachable' and 'no answer within 0.3 s' in str(exc.value)
    assert 'read the power state' in str(exc.value) and SECRET not in str(exc.value)
