# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt actuator of a scaling group: a member in, a member out, on one host.

Every function works over one host's read-write libvirt connection. A member is three things
on that host, all in the group's template pool:

- an overlay volume (qcow2) whose backing store is the group's base volume, so a member costs
  only what it writes;
- a seed volume (raw) holding the NoCloud seed image that ``_cloudinit.seed_iso`` built,
  uploaded through a libvirt stream;
- a persistent domain booting the overlay with the seed as a CD-ROM; its metadata (namespace and
  element chosen by the caller) is where the group keeps its state, including the names of the
  volumes to delete with the member.

``create_member`` leaves nothing half-made: when a step fails it removes what it created and
raises. ``remove_member`` deletes exactly the volumes it is given, never one that another
domain or volume still uses. Every libvirt error is raised as ``ScalingActuatorError`` naming the
host, volume or domain.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import uuid as uuid_mod
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url)
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.libvirt import HAS_LIBVIRT, libvirt

METADATA_PREFIX = 'leveller'
BASE_FORMATS = ('qcow2', 'raw')
CDROM_BUSES = ('sata', 'scsi')
EMULATOR_TYPES = ('kvm', 'qemu')
_UPLOAD_CHUNK = 256 * 1024
_TAG = re.compile(r'^<([A-Za-z_][\w.-]*)')


class ScalingActuatorError(LevellerError):
    """A libvirt step of a scaling group failed; the message names the host and the object."""

    def __init__(self, message, failure=FailureClass.CONFIGURATION):
        super(ScalingActuatorError, self).__init__(message, failure)


def _require_libvirt():
    if not HAS_LIBVIRT:
        raise ScalingActuatorError("scaling groups need libvirt-python on the controller: pip install 'libvirt-python>=9.0'")


def _host(conn):
    try:
        return redact_url(conn.getURI())
    except Exception:  # the connection itself may be what failed
        return 'an unknown host'


def _code(exc):
    return exc.get_error_code() if isinstance(exc, libvirt.libvirtError) else None


def _text(exc):
    if isinstance(exc, libvirt.libvirtError):
        return redact_url(exc.get_error_message() or str(exc))
    return redact_url(str(exc))


def _failure(exc):
    code = _code(exc)
    if code in (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_ERR_ACCESS_DENIED, libvirt.VIR_ERR_OPERATION_DENIED):
        return FailureClass.PERMISSION
    # A lost connection reports a system error from the RPC layer ("Cannot write data").
    if code in (libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT) or exc.get_error_domain() in (
            libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE):
        return FailureClass.UNREACHABLE
    return FailureClass.CONFIGURATION


def _error(conn, what, exc, fix=''):
    if isinstance(exc, ScalingActuatorError):
        return exc
    return ScalingActuatorError('%s on host %s failed: %s%s' % (what, _host(conn), _text(exc), fix), _failure(exc))


def _pool_name(pool):
    try:
        return pool.name()
    except Exception:
        return '?'


def find_pool(conn, name):
    """The active storage pool ``name`` of the host (``template.pool``)."""
    _require_libvirt()
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise _error(conn, 'looking up storage pool %r' % (name,), exc)
        try:
            known = sorted(p.name() for p in conn.listAllStoragePools(0))
        except libvirt.libvirtError:
            known = []
        raise ScalingActuatorError('template.pool: host %s has no storage pool %r (it has: %s): create it '
                                   'or name one of those' % (_host(conn), name, ', '.join(known) or 'none'))
    try:
        active = pool.isActive()
    except libvirt.libvirtError as exc:
        raise _error(conn, 'reading storage pool %r' % (name,), exc)
    if not active:
        raise ScalingActuatorError('template.pool: storage pool %r on host %s is not active: start it '
                                   '(virsh pool-start %s; pool-autostart keeps it so)' % (name, _host(conn), name))
    return pool


def find_base_volume(conn, pool, name):
    """The volume ``name`` of ``pool`` (``template.base_volume``)."""
    _require_libvirt()
    for attempt in (1, 2):
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise _error(conn, 'looking up volume %r in pool %r' % (name, _pool_name(pool)), exc)
        if attempt == 1:
            # An image copied into the pool's directory by hand is unknown to libvirt until the
            # pool is refreshed; a failed refresh (volumes busy) only means no second look.
            try:
                pool.refresh(0)
            except libvirt.libvirtError:
                break
    raise ScalingActuatorError('template.base_volume: storage pool %r on host %s has no volume %r: upload '
                               'the base image into it (virsh vol-create-as and vol-upload) or fix the name'
                               % (_pool_name(pool), _host(conn), name))


def _volume_format(vol):
    node = ET.fromstring(vol.XMLDesc(0)).find('target/format')
    return None if node is None else node.get('type')


def _volume_xml(name, capacity, fmt, backing_path=None, backing_format=None):
    backing = ''
    if backing_path is not None:
        backing = ('<backingStore><path>%s</path><format type=%s/></backingStore>'
                   % (escape(backing_path), quoteattr(backing_format)))
    # allocation 0: sparse, a member's disk costs what it writes.
    return ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation unit='bytes'>0</allocation>"
            "<target><format type=%s/></target>%s</volume>" % (escape(name), capacity, quoteattr(fmt), backing))


def create_overlay(conn, pool, base_vol, name):
    """A new qcow2 volume ``name`` in ``pool`` backed by ``base_vol``, of the base's capacity."""
    _require_libvirt()
    try:
        base_name, base_path = base_vol.name(), base_vol.path()
        base_format = _volume_format(base_vol)
        capacity = base_vol.info()[1]
    except libvirt.libvirtError as exc:
        raise _error(conn, 'reading base volume %r' % (_safe_name(base_vol),), exc)
    if base_format not in BASE_FORMATS:
        raise ScalingActuatorError('template.base_volume: volume %r on host %s has format %r; a qcow2 overlay '
                                   'needs a %s base: convert it (qemu-img convert -O qcow2)'
                                   % (base_name, _host(conn), base_format, ' or '.join(BASE_FORMATS)))
    xml = _volume_xml(name, capacity, 'qcow2', base_path, base_format)
    try:
        return pool.createXML(xml, 0)
    except libvirt.libvirtError as exc:
        raise _error(conn, 'creating overlay volume %r (backed by %r) in pool %r'
                     % (name, base_name, _pool_name(pool)), exc, _clash_fix(pool, name))


def _clash_fix(pool, name):
    # Drivers report a name clash with different codes (the test driver: operation failed), so
    # the pool is asked whether the name is taken.
    try:
        pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return ''
    return ': a volume of that name exists, perhaps left from an earlier member; delete it if no domain uses it'


def _safe_name(vol):
    try:
        return vol.name()
    except Exception:
        return '?'


def upload_volume(conn, pool, name, data):
    """A new raw volume ``name`` in ``pool`` holding ``data``, uploaded through a libvirt stream."""
    _require_libvirt()
    try:
        vol = pool.createXML(_volume_xml(name, len(data), 'raw'), 0)
    except libvirt.libvirtError as exc:
        raise _error(conn, 'creating volume %r in pool %r' % (name, _pool_name(pool)), exc, _clash_fix(pool, name))
    stream = None
    try:
        stream = conn.newStream(0)
        vol.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            sent = stream.send(view[offset:offset + _UPLOAD_CHUNK].tobytes())
            if sent <= 0:
                raise ScalingActuatorError('uploading volume %r in pool %r on host %s failed: the stream took '
                                           'no data' % (name, _pool_name(pool), _host(conn)), FailureClass.UNREACHABLE)
            offset += sent
        stream.finish()
    except BaseException as exc:
        if stream is not None:
            try:
                stream.abort()
            except Exception:
                pass  # the stream may never have started; the volume is what matters
        left = _delete_quietly(vol)
        if isinstance(exc, libvirt.libvirtError):
            raise _error(conn, 'uploading volume %r in pool %r' % (name, _pool_name(pool)), exc, left)
        if isinstance(exc, ScalingActuatorError) and left:
            raise ScalingActuatorError('%s%s' % (exc, left), exc.failure)
        raise
    return vol


def _delete_quietly(vol):
    """Delete a volume this module created; '' or a note naming what was left behind."""
    try:
        vol.delete(0)
        return ''
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return ''
        return '; volume %r was left behind (%s): delete it by hand' % (_safe_name(vol), _text(exc))


def _metadata_element(metadata_xml, metadata_ns):
    """The caller's element with the ``leveller`` prefix on its root, as libvirt's setMetadata writes it."""
    text = metadata_xml.strip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ScalingActuatorError('the member metadata is not well-formed XML (%s): a bug in the caller' % (exc,))
    match = _TAG.match(text)
    if match is None or match.group(1) != root.tag:
        raise ScalingActuatorError('the member metadata must be one element without a namespace prefix, '
                                   'got %r: a bug in the caller' % (text[:40],))
    tag = match.group(1)
    opened = '<%s:%s xmlns:%s=%s' % (METADATA_PREFIX, tag, METADATA_PREFIX, quoteattr(metadata_ns))
    text = opened + text[match.end():]
    if not text.endswith('/>'):
        text = re.sub(r'</%s\s*>$' % re.escape(tag), '</%s:%s>' % (METADATA_PREFIX, tag), text)
    return text


def domain_xml(name, uuid, vcpus, memory_mb, disk_path, seed_path, network, metadata_xml, metadata_ns,
               machine_type=None, emulator_type='kvm', mac=None, cdrom_bus='sata', kernel=None):
    """A minimal domain: virtio disk on the overlay, the seed as CD-ROM, one virtio NIC, serial console.

    ``network`` None leaves the NIC out (a group without networking); ``kernel`` (a path on the
    host) boots that kernel directly instead of the disk, for diskless images.
    """
    if emulator_type not in EMULATOR_TYPES:
        raise ScalingActuatorError('emulator_type must be one of %s (qemu for TCG, without KVM), got %r'
                                   % (', '.join(EMULATOR_TYPES), emulator_type))
    if cdrom_bus not in CDROM_BUSES:
        raise ScalingActuatorError('cdrom_bus must be one of %s, got %r' % (', '.join(CDROM_BUSES), cdrom_bus))
    for option, value in (('template.vcpus', vcpus), ('template.memory_mb', memory_mb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ScalingActuatorError('%s must be a whole number of at least 1, got %r' % (option, value))
    try:
        domain_uuid = str(uuid_mod.UUID(str(uuid)))
    except ValueError:
        raise ScalingActuatorError('the member UUID %r is not a UUID: a bug in the caller' % (uuid,))
    machine = ' machine=%s' % quoteattr(machine_type) if machine_type else ''
    # host-model gives KVM guests the host's CPU features (modern images need x86-64-v2) while
    # staying migratable; TCG cannot do host-model and keeps QEMU's default model.
    cpu = "<cpu mode='host-model'/>" if emulator_type == 'kvm' else ''
    # A SATA CD-ROM needs no driver in the guest; SCSI needs virtio-scsi, for machines without SATA.
    scsi = "<controller type='scsi' model='virtio-scsi'/>" if cdrom_bus == 'scsi' else ''
    cdrom_dev = 'sda'
    mac_xml = '<mac address=%s/>' % quoteattr(mac) if mac else ''
    nic = ''
    if network is not None:
        nic = ("<interface type='network'>%s<source network=%s/><model type='virtio'/></interface>"
               % (mac_xml, quoteattr(network)))
    # QEMU ignores the boot order when it loads a kernel itself.
    boot = '<kernel>%s</kernel>' % escape(kernel) if kernel else "<boot dev='hd'/>"
    return (
        "<domain type=%(type)s>"
        "<name>%(name)s</name><uuid>%(uuid)s</uuid>"
        "<metadata>%(metadata)s</metadata>"
        "<memory unit='MiB'>%(memory)d</memory><vcpu>%(vcpus)d</vcpu>"
        "<os><type%(machine)s>hvm</type>%(boot)s</os>"
        "<features><acpi/><apic/></features>%(cpu)s"
        "<clock offset='utc'/>"
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>"
        "<devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file=%(disk)s/>"
        "<target dev='vda' bus='virtio'/></disk>"
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file=%(seed)s/>"
        "<target dev=%(cdrom_dev)s bus=%(cdrom_bus)s/><readonly/></disk>%(scsi)s"
        "%(nic)s"
        "<serial type='pty'><target port='0'/></serial>"
        "<console type='pty'><target type='serial' port='0'/></console>"
        # The stats period makes the guest report its memory use, which the group's metrics read.
        "<memballoon model='virtio'><stats period='10'/></memballoon>"
        "</devices>"
        "</domain>"
    ) % {
        'type': quoteattr(emulator_type), 'name': escape(name), 'uuid': domain_uuid,
        'metadata': _metadata_element(metadata_xml, metadata_ns), 'memory': memory_mb, 'vcpus': vcpus,
        'machine': machine, 'cpu': cpu, 'disk': quoteattr(disk_path), 'seed': quoteattr(seed_path),
        'cdrom_dev': quoteattr(cdrom_dev), 'cdrom_bus': quoteattr(cdrom_bus), 'scsi': scsi, 'nic': nic,
        'boot': boot,
    }


def member_volume_names(name):
    """The names ``create_member`` gives a member's overlay and seed volumes, for its metadata."""
    return '%s.qcow2' % (name,), '%s-seed.iso' % (name,)


def create_member(conn, pool, base_vol, name, seed, vcpus, memory_mb, network, metadata_xml, metadata_ns,
                  uuid=None, machine_type=None, emulator_type='kvm', mac=None, cdrom_bus='sata', kernel=None):
    """Overlay, seed volume, persistent domain, started; on failure nothing is left. Returns the volume names."""
    _require_libvirt()
    overlay_name, seed_name = member_volume_names(name)
    domain_uuid = str(uuid or uuid_mod.uuid4())
    # The domain's own input is checked before any volume exists (paths are filled in later).
    domain_xml(name, domain_uuid, vcpus, memory_mb, '', '', network, metadata_xml, metadata_ns,
               machine_type=machine_type, emulator_type=emulator_type, mac=mac, cdrom_bus=cdrom_bus, kernel=kernel)
    created = []
    dom = None
    try:
        overlay = create_overlay(conn, pool, base_vol, overlay_name)
        created.append(overlay)
        seed_vol = upload_volume(conn, pool, seed_name, seed)
        created.append(seed_vol)
        xml = domain_xml(name, domain_uuid, vcpus, memory_mb, overlay.path(), seed_vol.path(), network,
                         metadata_xml, metadata_ns, machine_type=machine_type, emulator_type=emulator_type,
                         mac=mac, cdrom_bus=cdrom_bus, kernel=kernel)
        # defineXML would silently replace a domain of the same name and UUID; a clash must fail
        # instead, and the cleanup below must never undefine a domain this call did not define.
        if _lookup_domain(conn, name) is not None:
            raise ScalingActuatorError('defining domain %r on host %s failed: a domain of that name exists: '
                                       'choose another member name' % (name, _host(conn)))
        try:
            dom = conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            raise _error(conn, 'defining domain %r' % (name,), exc)
        try:
            dom.create()
        except libvirt.libvirtError as exc:
            raise _error(conn, 'starting domain %r' % (name,), exc)
    except BaseException as exc:
        left = _undo(conn, dom, created)
        if isinstance(exc, ScalingActuatorError) and left:
            raise ScalingActuatorError('%s%s' % (exc, left), exc.failure)
        if isinstance(exc, libvirt.libvirtError):
            raise _error(conn, 'creating member %r' % (name,), exc, left)
        raise
    return [overlay_name, seed_name]


def _lookup_domain(conn, name):
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def _undo(conn, dom, volumes):
    """Remove what create_member made; '' or notes naming what was left behind."""
    notes = []
    if dom is not None:
        try:
            if dom.isActive():
                dom.destroy()
            _undefine(dom)
        except libvirt.libvirtError as exc:
            if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                notes.append('; domain %r was left defined (%s): undefine it by hand' % (dom.name(), _text(exc)))
    for vol in reversed(volumes):
        notes.append(_delete_quietly(vol))
    return ''.join(notes)


# Managed save, snapshot and checkpoint metadata and NVRAM would each make a plain undefine
# fail or leave files behind; drivers that do not know a flag refuse the whole call, so fewer
# flags are tried next.
def _undefine_flag_sets():
    names = (('VIR_DOMAIN_UNDEFINE_MANAGED_SAVE', 'VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA',
              'VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA', 'VIR_DOMAIN_UNDEFINE_NVRAM'),
             ('VIR_DOMAIN_UNDEFINE_MANAGED_SAVE', 'VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA',
              'VIR_DOMAIN_UNDEFINE_NVRAM'),
             ('VIR_DOMAIN_UNDEFINE_MANAGED_SAVE', 'VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA'),
             ('VIR_DOMAIN_UNDEFINE_MANAGED_SAVE',))
    sets = []
    for group in names:
        flags = 0
        for flag in group:
            flags |= getattr(libvirt, flag, 0)
        sets.append(flags)
    return sets


def _undefine(dom):
    sets = _undefine_flag_sets()
    for index, flags in enumerate(sets):
        try:
            dom.undefineFlags(flags)
            return
        except libvirt.libvirtError as exc:
            unsupported = _code(exc) in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT)
            if not unsupported or index == len(sets) - 1:
                raise


def _disk_sources(xml, pool_name, names):
    """Paths a domain's disks use; a disk naming a pool and volume counts as that volume's path."""
    sources = set()
    for node in ET.fromstring(xml).findall('devices/disk/source'):
        if node.get('pool') == pool_name and node.get('volume') in names:
            sources.add(names[node.get('volume')])
        sources.add(node.get('file') or node.get('dev') or node.get('name'))
    return sources


def _users(conn, pool, paths, domain_name):
    """{path: what else uses it}: other domains' disks and other volumes' backing stores."""
    users = {}
    names = dict((name, path) for path, name in paths.items())
    for dom in conn.listAllDomains(0):
        try:
            if dom.name() == domain_name:
                continue
            used = _disk_sources(dom.XMLDesc(0), pool.name(), names) & set(paths)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # removed while we looked
            raise
        for path in used:
            users.setdefault(path, []).append('domain %s' % (dom.name(),))
    # Listed volumes count too: the base volume listed next to its overlay is still refused.
    for vol in pool.listAllVolumes(0):
        node = ET.fromstring(vol.XMLDesc(0)).find('backingStore/path')
        if node is not None and node.text in paths:
            users.setdefault(node.text, []).append('volume %s' % (vol.name(),))
    return users


def remove_member(conn, domain_name, volumes, pool):
    """Destroy and undefine the domain, then delete exactly ``volumes`` (names in ``pool``); tolerant when gone.

    Returns {'domain': the name or None when it was gone, 'volumes': the names deleted}.
    """
    _require_libvirt()
    removed = {'domain': None, 'volumes': []}
    try:
        if not hasattr(pool, 'storageVolLookupByName'):
            try:
                pool = conn.storagePoolLookupByName(pool)
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_POOL:
                    raise
                pool = None  # the pool and so its volumes are gone
        found = []
        for name in (volumes if pool is not None else ()):
            try:
                found.append(pool.storageVolLookupByName(name))
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
        # The names come from metadata anyone can edit: a name pointing at the base volume or at
        # another member's disk must not destroy it.
        paths = dict((vol.path(), vol.name()) for vol in found)
        users = _users(conn, pool, paths, domain_name) if paths else {}
        if users:
            raise ScalingActuatorError('member %s on host %s lists volumes that others still use (%s): nothing was '
                                       'removed; fix the member\'s metadata' % (
                                           domain_name, _host(conn), '; '.join(
                                               '%s by %s' % (paths[path], ', '.join(who)) for path, who in sorted(users.items()))),
                                       FailureClass.INCONSISTENT)
        dom = _lookup_domain(conn, domain_name)
        if dom is not None:
            try:
                if dom.isActive():
                    dom.destroy()
                _undefine(dom)
                removed['domain'] = domain_name
            except libvirt.libvirtError as exc:
                # A transient domain vanishes when destroyed; another run may have removed it.
                if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise _error(conn, 'removing domain %r' % (domain_name,), exc)
        for vol in found:
            name = vol.name()
            try:
                vol.delete(0)
                removed['volumes'].append(name)
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise _error(conn, 'deleting volume %r of member %r' % (name, domain_name), exc)
    except libvirt.libvirtError as exc:
        raise _error(conn, 'removing member %r' % (domain_name,), exc)
    return removed
