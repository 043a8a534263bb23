# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init for the members of a libvirt scaling group: addresses, checks and the NoCloud seed.

A new member boots from an overlay of the group's base volume with a NoCloud seed attached as a
CD-ROM: an ISO 9660 image labelled ``cidata`` holding ``user-data``, ``meta-data`` and, when the
group hands out static addresses, ``network-config`` (version 2). The image is built in memory
with pycdlib, so nothing is written on the controller; the actuator uploads the bytes into the
host's storage pool.

Addresses come from the group's ``addresses`` option (a range, a CIDR or a list of them). The
group's state lives in its domains' metadata, so the addresses already taken are read from there
and passed to ``allocate_addresses``; allocation is deterministic (lowest free first), which
makes a re-run after a failure pick the same addresses.

Every check raises ``CloudInitError(option, message)`` before anything is created.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import ipaddress
import re
import traceback

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - ansible-core brings PyYAML
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()

try:
    import pycdlib
    HAS_PYCDLIB = True
    PYCDLIB_IMPORT_ERROR = None
except ImportError:
    pycdlib = None
    HAS_PYCDLIB = False
    PYCDLIB_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import FailureClass, LevellerError

SEED_LABEL = 'cidata'
# File name in the seed -> its ISO 9660 level 1 name (8.3); cloud-init reads the Rock Ridge or
# Joliet name, the short one only keeps the image valid for strict readers.
SEED_FILES = (('user-data', 'USERDATA.;1'), ('meta-data', 'METADATA.;1'),
              ('network-config', 'NETWORKC.;1'))
# A CIDR such as 10.0.0.0/8 would expand to millions of addresses held in memory.
MAX_ADDRESSES = 65536
_HOSTNAME_LABEL = re.compile(r'^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$')
_MAC = re.compile(r'^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$')


class CloudInitError(LevellerError):
    """Bad cloud-init input, naming the option and the fix."""

    def __init__(self, option, message):
        super(CloudInitError, self).__init__('%s: %s' % (option, message), FailureClass.CONFIGURATION)
        self.option = option
        self.message = message


def _require(has, name, version):
    if not has:
        raise LevellerError("the cloud-init seed needs the Python library %s on the controller: "
                            "pip install '%s>=%s'" % (name, name, version), FailureClass.CONFIGURATION)


def _address(text, option):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise CloudInitError(option, '%r is not an IPv4 or IPv6 address: give an address, a range '
                                     '"first-last" or a CIDR "network/prefix"' % (text,))


def _expand(item, option):
    if not isinstance(item, str):
        raise CloudInitError(option, '%r is not a text: give an address, a range "first-last", a CIDR '
                                     '"network/prefix" or a list of them' % (item,))
    text = item.strip()
    if not text:
        raise CloudInitError(option, 'an entry is empty: give an address, a range "first-last" or a CIDR')
    if '/' in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise CloudInitError(option, '%r is not a CIDR: write it as network/prefix, e.g. 192.168.5.0/28' % (text,))
        if network.network_address != ipaddress.ip_interface(text).ip:
            raise CloudInitError(option, '%r has host bits set: did you mean %s?' % (text, network))
        if network.num_addresses > MAX_ADDRESSES:
            raise CloudInitError(option, '%s holds %d addresses, more than %d: give a smaller network or a range'
                                 % (network, network.num_addresses, MAX_ADDRESSES))
        hosts = list(network.hosts())
        if not hosts:
            raise CloudInitError(option, '%s has no usable host address: give a larger network' % (network,))
        return hosts
    if '-' in text:
        first_text, last_text = text.split('-', 1)
        first, last = _address(first_text, option), _address(last_text, option)
        if first.version != last.version:
            raise CloudInitError(option, 'the range %r mixes IPv%d and IPv%d: give both ends in one family'
                                 % (text, first.version, last.version))
        if int(last) < int(first):
            raise CloudInitError(option, 'the range %r runs backwards: write it as %s-%s' % (text, last, first))
        if int(last) - int(first) + 1 > MAX_ADDRESSES:
            raise CloudInitError(option, 'the range %r holds %d addresses, more than %d: give a smaller range'
                                 % (text, int(last) - int(first) + 1, MAX_ADDRESSES))
        return [type(first)(n) for n in range(int(first), int(last) + 1)]
    return [_address(text, option)]


def parse_address_range(text, option='addresses'):
    """Addresses of a range "a-b", a CIDR (usable hosts), a single address or a list of them: sorted, unique."""
    items = text if isinstance(text, (list, tuple)) else [text]
    if not items:
        raise CloudInitError(option, 'the list is empty: give at least one address, range or CIDR')
    seen = set()
    for item in items:
        seen.update(_expand(item, option))
    versions = sorted(set(a.version for a in seen))
    if len(versions) > 1:
        raise CloudInitError(option, 'mixes IPv4 and IPv6 addresses: a group hands out addresses of one family, '
                                     'keep the entries of one of them')
    if len(seen) > MAX_ADDRESSES:
        raise CloudInitError(option, 'holds %d addresses, more than %d: give smaller ranges' % (len(seen), MAX_ADDRESSES))
    return sorted(seen)


def _taken_address(value):
    # Metadata may record an address with its prefix (192.168.5.7/24).
    try:
        return ipaddress.ip_interface(value if not isinstance(value, str) else value.strip()).ip
    except ValueError:
        raise CloudInitError('addresses', 'a group member records %r, which is not an address: fix or remove '
                                          'that member\'s metadata' % (value,))


def allocate_addresses(available, taken, count):
    """The ``count`` lowest addresses of ``available`` not in ``taken``; raises when too few are free."""
    if count < 0:
        raise ValueError('count must not be negative (got %r)' % (count,))
    taken_set = set(_taken_address(t) for t in taken)
    pool = sorted(set(ipaddress.ip_address(a) if isinstance(a, str) else a for a in available),
                  key=lambda a: (a.version, int(a)))
    free = [a for a in pool if a not in taken_set]
    if count > len(free):
        raise CloudInitError('addresses', '%d new member(s) need an address but only %d of the %d in the range '
                                          '%s free: widen the range or lower max_size'
                             % (count, len(free), len(pool), 'is' if len(free) == 1 else 'are'))
    return free[:count]


def check_user_data(text):
    """``text`` when it is cloud-config (a YAML mapping), a script or a MIME multi-part; else CloudInitError."""
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise CloudInitError('user_data', 'is not UTF-8 text (byte %d): save it as UTF-8' % (exc.start,))
    if not isinstance(text, str):
        raise CloudInitError('user_data', 'must be a text, got %s' % (type(text).__name__,))
    first = text.split('\n', 1)[0].rstrip()
    if first == '#cloud-config':
        _require(HAS_YAML, 'PyYAML', '5.1')
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, 'problem_mark', None)
            where = ' at line %d, column %d' % (mark.line + 1, mark.column + 1) if mark is not None else ''
            problem = getattr(exc, 'problem', None) or str(exc).split('\n', 1)[0]
            raise CloudInitError('user_data', 'is not valid YAML%s: %s: fix the cloud-config there' % (where, problem))
        # An empty cloud-config (the header alone) is valid for cloud-init: it changes nothing.
        if data is not None and not isinstance(data, dict):
            raise CloudInitError('user_data', 'a cloud-config must be a YAML mapping (keys such as users, packages, '
                                              'runcmd), this one is a %s' % (type(data).__name__,))
        return text
    if first.startswith('#!') or first.lower().startswith('content-type: multipart'):
        return text
    # Only the first few characters: user-data may hold secrets further on.
    raise CloudInitError('user_data', "must start with '#cloud-config' (cloud-config YAML), '#!' (a script) or "
                                      "'Content-Type: multipart' (several parts); its first line starts with %r"
                         % (first[:20],))


def _dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def meta_data(instance_id, hostname):
    """NoCloud meta-data (YAML) with ``instance-id`` and ``local-hostname``."""
    _require(HAS_YAML, 'PyYAML', '5.1')
    if not isinstance(instance_id, str) or not instance_id.strip():
        raise CloudInitError('instance_id', 'must be a non-empty text (the domain UUID is a good one): got %r' % (instance_id,))
    labels = hostname.split('.') if isinstance(hostname, str) else None
    if not labels or len(hostname) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise CloudInitError('hostname', '%r is not a valid host name: use letters, digits and hyphens, '
                                         'labels of at most 63 characters separated by dots' % (hostname,))
    return _dump({'instance-id': instance_id, 'local-hostname': hostname})


def network_config(address, prefix_length, gateway, nameservers=None, mac=None):
    """network-config version 2 (YAML): one static address, matched by MAC when given, else by name en*."""
    _require(HAS_YAML, 'PyYAML', '5.1')
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        raise CloudInitError('addresses', '%r is not an IPv4 or IPv6 address' % (address,))
    limit = 32 if ip.version == 4 else 128
    if isinstance(prefix_length, bool) or not isinstance(prefix_length, int) or not 1 <= prefix_length <= limit:
        raise CloudInitError('prefix_length', 'must be a whole number from 1 to %d for IPv%d (got %r)'
                             % (limit, ip.version, prefix_length))
    iface = ipaddress.ip_interface('%s/%d' % (ip, prefix_length))
    if ip.version == 4 and prefix_length < 31 and ip in (iface.network.network_address, iface.network.broadcast_address):
        raise CloudInitError('addresses', '%s is the network or broadcast address of %s: leave it out of the range'
                             % (ip, iface.network))
    if mac is not None and not (isinstance(mac, str) and _MAC.match(mac)):
        raise CloudInitError('mac', '%r is not a MAC address: write six hex pairs separated by colons' % (mac,))
    # Without a MAC the one virtio NIC is matched by its predictable name (enp1s0 and the like).
    ethernet = {'match': {'macaddress': mac.lower()} if mac else {'name': 'en*'}}
    ethernet['addresses'] = [str(iface)]
    if gateway is not None:
        try:
            gw = ipaddress.ip_address(str(gateway))
        except ValueError:
            raise CloudInitError('gateway', '%r is not an IPv4 or IPv6 address' % (gateway,))
        if gw.version != ip.version or gw not in iface.network or gw == ip:
            raise CloudInitError('gateway', '%s is not another address of the network %s: give the router of that network'
                                 % (gw, iface.network))
        # 'to: default' and gateway4 are not understood by every cloud-init renderer; a route to
        # 0.0.0.0/0 (::/0) is.
        ethernet['routes'] = [{'to': '0.0.0.0/0' if ip.version == 4 else '::/0', 'via': str(gw)}]
    if nameservers:
        servers = []
        for server in nameservers:
            try:
                servers.append(str(ipaddress.ip_address(str(server))))
            except ValueError:
                raise CloudInitError('nameservers', '%r is not an IPv4 or IPv6 address' % (server,))
        ethernet['nameservers'] = {'addresses': servers}
    return _dump({'version': 2, 'ethernets': {'primary': ethernet}})


def seed_iso(user_data, meta_data, network_config=None):
    """The NoCloud seed as bytes: ISO 9660 with Joliet and Rock Ridge, volume ``cidata``, built in memory."""
    _require(HAS_PYCDLIB, 'pycdlib', '1.14')
    for option, text in (('user_data', user_data), ('meta_data', meta_data)):
        if text is None:
            raise CloudInitError(option, 'is required in a NoCloud seed (it may be empty, not missing)')
    contents = {'user-data': user_data, 'meta-data': meta_data, 'network-config': network_config}
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, rock_ridge='1.09', vol_ident=SEED_LABEL)
    try:
        for name, iso_name in SEED_FILES:
            text = contents[name]
            if text is None:
                continue
            data = text.encode('utf-8') if isinstance(text, str) else bytes(text)
            # pycdlib reads the file objects only when writing: they stay open until then.
            iso.add_fp(io.BytesIO(data), len(data), '/' + iso_name, rr_name=name, joliet_path='/' + name)
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


def read_seed_iso(data):
    """The files of a seed image as {name: text} (Rock Ridge names), read back with pycdlib."""
    _require(HAS_PYCDLIB, 'pycdlib', '1.14')
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        files = {}
        for child in iso.list_children(rr_path='/'):
            if not child.is_file() or child.rock_ridge is None:
                continue
            name = child.rock_ridge.name().decode('utf-8')
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path='/' + name)
            files[name] = out.getvalue().decode('utf-8')
        return files
    finally:
        iso.close()
