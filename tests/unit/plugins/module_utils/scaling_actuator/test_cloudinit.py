# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init of scaling group members: address ranges and allocation, user-data checks,
meta-data and network-config, and the NoCloud seed image read back with pycdlib."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import builtins
import io
import ipaddress
import tempfile

import pytest
import yaml
from hypothesis import given, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils import _cloudinit as ci

pycdlib = pytest.importorskip('pycdlib')


def ips(*texts):
    return [ipaddress.ip_address(t) for t in texts]


# -- address ranges -------------------------------------------------------------------------

def test_range_is_inclusive_and_ordered():
    assert ci.parse_address_range('192.168.5.2-192.168.5.5') == ips('192.168.5.2', '192.168.5.3', '192.168.5.4',
                                                                    '192.168.5.5')
    assert ci.parse_address_range(' 192.168.5.9 - 192.168.5.9 ') == ips('192.168.5.9')


def test_cidr_gives_usable_hosts_only():
    hosts = ci.parse_address_range('192.168.5.0/28')
    assert hosts[0] == ipaddress.ip_address('192.168.5.1') and hosts[-1] == ipaddress.ip_address('192.168.5.14')
    assert len(hosts) == 14
    assert ci.parse_address_range('10.0.0.8/31') == ips('10.0.0.8', '10.0.0.9')  # point-to-point: both usable
    assert ci.parse_address_range('10.0.0.8/32') == ips('10.0.0.8')


def test_list_is_merged_sorted_without_duplicates():
    got = ci.parse_address_range(['192.168.5.10-192.168.5.12', '192.168.5.11', '192.168.5.0/30', '192.168.5.2'])
    assert got == ips('192.168.5.1', '192.168.5.2', '192.168.5.10', '192.168.5.11', '192.168.5.12')
    assert len(got) == len(set(got))


def test_ipv6_range():
    assert ci.parse_address_range('fd00::a-fd00::c') == ips('fd00::a', 'fd00::b', 'fd00::c')
    assert all(a.version == 6 for a in ci.parse_address_range('fd00::/126'))


@pytest.mark.parametrize('text, words', [
    ('192.168.5.9-192.168.5.2', ['runs backwards', '192.168.5.2-192.168.5.9']),
    ('192.168.5.2-fd00::1', ['mixes IPv4 and IPv6']),
    (['192.168.5.2', 'fd00::1'], ['mixes IPv4 and IPv6']),
    ('192.168.5.300', ['not an IPv4 or IPv6 address']),
    ('web-1', ['not an IPv4 or IPv6 address']),
    ('192.168.5.1/28', ['host bits set', '192.168.5.0/28']),
    ('192.168.5.0/40', ['not a CIDR']),
    ('10.0.0.0/8', ['more than 65536']),
    ([], ['the list is empty']),
    ([''], ['empty']),
    (None, ['not a text']),
    ([7], ['not a text']),
])
def test_bad_ranges_name_the_option_and_the_fix(text, words):
    with pytest.raises(ci.CloudInitError) as err:
        ci.parse_address_range(text)
    assert err.value.option == 'addresses'
    assert str(err.value).startswith('addresses: ')
    for word in words:
        assert word in str(err.value)


def test_option_name_can_be_the_callers():
    with pytest.raises(ci.CloudInitError) as err:
        ci.parse_address_range('nope', option='cloud_init.addresses')
    assert str(err.value).startswith('cloud_init.addresses: ')


# -- allocation -----------------------------------------------------------------------------

def test_allocation_takes_the_lowest_free_and_is_deterministic():
    available = ci.parse_address_range('192.168.5.2-192.168.5.9')
    taken = ['192.168.5.2', ipaddress.ip_address('192.168.5.4'), '192.168.5.5/24']
    first = ci.allocate_addresses(available, taken, 3)
    assert first == ips('192.168.5.3', '192.168.5.6', '192.168.5.7')
    assert ci.allocate_addresses(list(reversed(available)), list(reversed(taken)), 3) == first
    assert ci.allocate_addresses(available, taken, 0) == []


def test_exhaustion_says_how_many_are_free():
    available = ci.parse_address_range('192.168.5.2-192.168.5.4')
    with pytest.raises(ci.CloudInitError) as err:
        ci.allocate_addresses(available, ['192.168.5.3'], 3)
    assert err.value.option == 'addresses'
    assert 'only 2 of the 3 in the range are free' in str(err.value)
    assert 'widen the range or lower max_size' in str(err.value)


def test_a_damaged_taken_address_is_named():
    with pytest.raises(ci.CloudInitError) as err:
        ci.allocate_addresses(ips('10.0.0.1'), ['garbage'], 1)
    assert "'garbage'" in str(err.value) and 'metadata' in str(err.value)


@given(st.sets(st.integers(0, 63), min_size=1), st.sets(st.integers(0, 80)), st.integers(0, 70))
def test_allocation_property(available_ids, taken_ids, count):
    base = int(ipaddress.ip_address('10.1.0.0'))
    available = [ipaddress.ip_address(base + n) for n in sorted(available_ids, reverse=True)]
    taken = [str(ipaddress.ip_address(base + n)) for n in taken_ids]
    free = sorted(set(available) - set(ipaddress.ip_address(t) for t in taken))
    if count > len(free):
        with pytest.raises(ci.CloudInitError) as err:
            ci.allocate_addresses(available, taken, count)
        assert 'only %d of the %d' % (len(free), len(available)) in str(err.value)
        return
    got = ci.allocate_addresses(available, taken, count)
    assert len(got) == count == len(set(got))                  # never a duplicate
    assert not set(got) & set(ipaddress.ip_address(t) for t in taken)  # never a taken one
    assert got == free[:count]                                  # always the lowest free


# -- user-data ------------------------------------------------------------------------------

def test_valid_user_data_is_returned_unchanged():
    config = '#cloud-config\nusers:\n  - name: ops\npackages: [nginx]\n'
    assert ci.check_user_data(config) == config
    assert ci.check_user_data('#cloud-config\n') == '#cloud-config\n'   # empty: cloud-init accepts it
    script = '#!/bin/sh\necho hello > /run/hello\n'
    assert ci.check_user_data(script) == script
    multipart = 'Content-Type: multipart/mixed; boundary="==X=="\nMIME-Version: 1.0\n\n--==X==--\n'
    assert ci.check_user_data(multipart) == multipart
    assert ci.check_user_data(config.encode('utf-8')) == config


def test_bad_yaml_names_the_line():
    text = '#cloud-config\nusers:\n  - name: ops\n packages: [nginx\nruncmd: []\n'
    with pytest.raises(ci.CloudInitError) as err:
        ci.check_user_data(text)
    assert err.value.option == 'user_data'
    assert 'is not valid YAML at line 4' in str(err.value)


def test_cloud_config_must_be_a_mapping():
    with pytest.raises(ci.CloudInitError) as err:
        ci.check_user_data('#cloud-config\n- a\n- b\n')
    assert 'must be a YAML mapping' in str(err.value) and 'list' in str(err.value)


@pytest.mark.parametrize('text', ['users: []\n', '#cloud-config-archive\n- {}\n', '', '  #!/bin/sh\n'])
def test_unknown_user_data_is_refused_naming_what_is_accepted(text):
    with pytest.raises(ci.CloudInitError) as err:
        ci.check_user_data(text)
    assert err.value.option == 'user_data'
    for start in ('#cloud-config', '#!', 'Content-Type: multipart'):
        assert start in str(err.value)


def test_user_data_of_the_wrong_type():
    with pytest.raises(ci.CloudInitError) as err:
        ci.check_user_data({'users': []})
    assert 'must be a text' in str(err.value)


# -- meta-data and network-config -----------------------------------------------------------

def test_meta_data_parses_back():
    data = yaml.safe_load(ci.meta_data('6695eb01-f6a4-8304-79aa-97f2502e193f', 'web-3'))
    assert data == {'instance-id': '6695eb01-f6a4-8304-79aa-97f2502e193f', 'local-hostname': 'web-3'}


@pytest.mark.parametrize('hostname', ['web_3', '-web', 'a' * 64, '', None, 'web..lab'])
def test_meta_data_refuses_a_bad_hostname(hostname):
    with pytest.raises(ci.CloudInitError) as err:
        ci.meta_data('i-1', hostname)
    assert err.value.option == 'hostname'


def test_network_config_by_name_parses_back():
    data = yaml.safe_load(ci.network_config(ipaddress.ip_address('192.168.5.7'), 24, '192.168.5.1',
                                            nameservers=['192.168.5.1', '9.9.9.9']))
    assert data['version'] == 2
    (eth,) = data['ethernets'].values()
    assert eth['match'] == {'name': 'en*'}
    assert eth['addresses'] == ['192.168.5.7/24']
    assert eth['routes'] == [{'to': '0.0.0.0/0', 'via': '192.168.5.1'}]
    assert eth['nameservers'] == {'addresses': ['192.168.5.1', '9.9.9.9']}


def test_network_config_by_mac_and_without_gateway():
    data = yaml.safe_load(ci.network_config('fd00::7', 64, None, mac='52:54:00:AB:cd:01'))
    (eth,) = data['ethernets'].values()
    assert eth['match'] == {'macaddress': '52:54:00:ab:cd:01'}
    assert eth['addresses'] == ['fd00::7/64']
    assert 'routes' not in eth and 'nameservers' not in eth


@pytest.mark.parametrize('args, option', [
    (('192.168.5.0', 24, '192.168.5.1'), 'addresses'),       # network address
    (('192.168.5.255', 24, '192.168.5.1'), 'addresses'),     # broadcast
    (('192.168.5.7', 33, None), 'prefix_length'),
    (('192.168.5.7', '24', None), 'prefix_length'),
    (('192.168.5.7', 24, '192.168.6.1'), 'gateway'),         # not on the network
    (('192.168.5.7', 24, '192.168.5.7'), 'gateway'),
    (('192.168.5.7', 24, 'fd00::1'), 'gateway'),
    (('nope', 24, None), 'addresses'),
])
def test_network_config_refuses_bad_input(args, option):
    with pytest.raises(ci.CloudInitError) as err:
        ci.network_config(*args)
    assert err.value.option == option


def test_network_config_refuses_bad_mac_and_nameserver():
    with pytest.raises(ci.CloudInitError) as err:
        ci.network_config('192.168.5.7', 24, None, mac='52:54:00')
    assert err.value.option == 'mac'
    with pytest.raises(ci.CloudInitError) as err:
        ci.network_config('192.168.5.7', 24, None, nameservers=['dns.example'])
    assert err.value.option == 'nameservers'


# -- the seed image -------------------------------------------------------------------------

USER_DATA = u'#cloud-config\nusers:\n  - name: ops\n    gecos: "Opérateur"\nruncmd: [[touch, /run/up]]\n'


def seed_files():
    return {'user-data': USER_DATA, 'meta-data': ci.meta_data('i-1', 'web-1'),
            'network-config': ci.network_config('192.168.5.7', 24, '192.168.5.1')}


def test_seed_reads_back_byte_identical():
    files = seed_files()
    data = ci.seed_iso(files['user-data'], files['meta-data'], files['network-config'])
    assert ci.read_seed_iso(data) == files
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'cidata'
        assert iso.has_joliet() and iso.has_rock_ridge()
        # blkid (and so cloud-init) reads the label from the Joliet descriptor when there is one.
        assert iso.joliet_vd.volume_identifier.decode('utf-16_be').rstrip(u' ') == u'cidata'
        for name, text in files.items():
            for where in ({'joliet_path': '/' + name}, {'rr_path': '/' + name}):
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **where)
                assert out.getvalue() == text.encode('utf-8')
    finally:
        iso.close()


def test_seed_without_network_config():
    data = ci.seed_iso('#!/bin/sh\ntrue\n', ci.meta_data('i-2', 'web-2'))
    assert sorted(ci.read_seed_iso(data)) == ['meta-data', 'user-data']


def test_seed_requires_user_data_and_meta_data():
    with pytest.raises(ci.CloudInitError) as err:
        ci.seed_iso(None, 'instance-id: i-1\n')
    assert err.value.option == 'user_data'


def test_seed_is_built_in_memory(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('the seed touched the file system')
    for name in ('mkstemp', 'mkdtemp', 'NamedTemporaryFile', 'TemporaryFile', 'SpooledTemporaryFile'):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(builtins, 'open', refuse)
    files = seed_files()
    data = ci.seed_iso(files['user-data'], files['meta-data'], files['network-config'])
    assert ci.read_seed_iso(data) == files


def test_missing_pycdlib_is_named(monkeypatch):
    monkeypatch.setattr(ci, 'HAS_PYCDLIB', False)
    with pytest.raises(ci.LevellerError) as err:
        ci.seed_iso('#cloud-config\n', 'instance-id: i-1\n')
    assert "pip install 'pycdlib>=1.14'" in str(err.value)
