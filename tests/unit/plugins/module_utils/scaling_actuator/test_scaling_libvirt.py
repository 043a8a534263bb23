# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scaling group's libvirt actuator against libvirt's test:///default driver.

What the test driver does (libvirt 9): its pool ``default-pool`` (type dir, no file behind it)
creates and deletes volumes, keeps a volume's ``backingStore`` and format as given, and reports
a capacity; it defines, starts, destroys and undefines domains of type kvm, keeps their metadata
and refuses a second domain of the same name.

What it cannot do, left to the QEMU test bed: it has no storage streams (``virStorageVolUpload``
is "not supported by the connection driver"), so the seed's upload is tested here only as a
failure that must leave nothing behind, and ``create_member``'s full path runs with the upload
replaced by a plain volume creation; it writes no files, so whether QEMU boots the domain XML,
reads the overlay through its backing store and finds the seed is not checked here; its
``undefineFlags`` knows managed save and snapshot metadata but refuses the NVRAM and checkpoint
flags, so the fallback to fewer flags is what runs here.

test:///default is one shared state per process: every test names its objects uniquely and
removes them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import uuid
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip('libvirt')

from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_libvirt as sl

NS = 'urn:cloudops-leveller:scaling:test'
SEED = b'\0' * 4096


@pytest.fixture
def conn():
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    connection = libvirt.open('test:///default')
    before_vols = set(connection.storagePoolLookupByName('default-pool').listVolumes())
    before_doms = set(d.name() for d in connection.listAllDomains(0))
    yield connection
    pool = connection.storagePoolLookupByName('default-pool')
    for name in set(pool.listVolumes()) - before_vols:
        pool.storageVolLookupByName(name).delete(0)
    for dom in connection.listAllDomains(0):
        if dom.name() not in before_doms:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    connection.close()


@pytest.fixture
def pool(conn):
    return sl.find_pool(conn, 'default-pool')


def unique(prefix):
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


@pytest.fixture
def base(conn, pool):
    name = unique('base') + '.qcow2'
    pool.createXML("<volume><name>%s</name><capacity unit='bytes'>2147483648</capacity>"
                   "<target><format type='qcow2'/></target></volume>" % name, 0)
    return sl.find_base_volume(conn, pool, name)


def volume_names(pool):
    return set(pool.listVolumes())


def fake_upload(conn, pool, name, data):
    """What upload_volume does minus the stream, which the test driver lacks."""
    return pool.createXML("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
                          "<target><format type='raw'/></target></volume>" % (name, len(data)), 0)


# -- finding the template -------------------------------------------------------------------

def test_missing_pool_names_the_option_host_and_known_pools(conn):
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.find_pool(conn, 'images')
    text = str(err.value)
    assert text.startswith('template.pool: ') and "'images'" in text
    assert 'test:///default' in text and 'default-pool' in text


def test_an_inactive_pool_is_refused_with_the_command_that_starts_it(conn):
    name = unique('images')
    defined = conn.storagePoolDefineXML("<pool type='dir'><name>%s</name><target><path>/%s</path></target></pool>"
                                        % (name, name), 0)
    try:
        with pytest.raises(sl.ScalingActuatorError) as err:
            sl.find_pool(conn, name)
        assert str(err.value).startswith('template.pool: ') and 'virsh pool-start %s' % name in str(err.value)
    finally:
        defined.undefine()


def test_missing_base_volume_names_the_option_pool_and_host(conn, pool):
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.find_base_volume(conn, pool, 'jammy.qcow2')
    text = str(err.value)
    assert text.startswith('template.base_volume: ')
    assert "'jammy.qcow2'" in text and "'default-pool'" in text and 'test:///default' in text


# -- volumes --------------------------------------------------------------------------------

def test_overlay_is_qcow2_backed_by_the_base(conn, pool, base):
    name = unique('web') + '.qcow2'
    vol = sl.create_overlay(conn, pool, base, name)
    root = ET.fromstring(vol.XMLDesc(0))
    assert root.find('name').text == name
    assert root.find('target/format').get('type') == 'qcow2'
    assert root.find('backingStore/path').text == base.path()
    assert root.find('backingStore/format').get('type') == 'qcow2'
    assert vol.info()[1] == base.info()[1]


def test_overlay_of_a_raw_base_names_raw_as_backing_format(conn, pool):
    raw = unique('base') + '.img'
    pool.createXML("<volume><name>%s</name><capacity>1048576</capacity><target><format type='raw'/></target></volume>"
                   % raw, 0)
    vol = sl.create_overlay(conn, pool, pool.storageVolLookupByName(raw), unique('web') + '.qcow2')
    assert ET.fromstring(vol.XMLDesc(0)).find('backingStore/format').get('type') == 'raw'


def test_overlay_refuses_a_base_of_another_format(conn, pool):
    iso = unique('base') + '.iso'
    pool.createXML("<volume><name>%s</name><capacity>1048576</capacity><target><format type='iso'/></target></volume>"
                   % iso, 0)
    before = volume_names(pool)
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.create_overlay(conn, pool, pool.storageVolLookupByName(iso), unique('web') + '.qcow2')
    assert str(err.value).startswith('template.base_volume: ') and "'iso'" in str(err.value)
    assert volume_names(pool) == before


def test_overlay_name_clash_is_named_and_the_other_volume_kept(conn, pool, base):
    name = unique('web') + '.qcow2'
    sl.create_overlay(conn, pool, base, name)
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.create_overlay(conn, pool, base, name)
    assert repr(name) in str(err.value) and 'a volume of that name exists' in str(err.value)
    assert name in volume_names(pool)


def test_upload_is_not_supported_by_the_test_driver_and_leaves_no_volume(conn, pool):
    before = volume_names(pool)
    name = unique('web') + '-seed.iso'
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.upload_volume(conn, pool, name, SEED)
    assert repr(name) in str(err.value) and 'test:///default' in str(err.value)
    assert volume_names(pool) == before


# -- the domain XML -------------------------------------------------------------------------

def member_xml(**kwargs):
    args = dict(name='web-1', uuid='6695eb01-f6a4-8304-79aa-97f2502e1930', vcpus=2, memory_mb=1024,
                disk_path='/default-pool/web-1.qcow2', seed_path='/default-pool/web-1-seed.iso', network='default',
                metadata_xml='<member group="web" created="2026-01-01T00:00:00Z"><volume name="web-1.qcow2"/></member>',
                metadata_ns=NS)
    args.update(kwargs)
    return sl.domain_xml(**args)


def test_domain_xml_is_small_and_complete():
    root = ET.fromstring(member_xml())
    assert root.get('type') == 'kvm' and root.find('name').text == 'web-1'
    assert root.find('memory').text == '1024' and root.find('memory').get('unit') == 'MiB'
    assert root.find('vcpu').text == '2'
    assert root.find('cpu').get('mode') == 'host-model'
    disk, cdrom = root.findall('devices/disk')
    assert (disk.get('device'), disk.find('target').get('bus'), disk.find('driver').get('type')) == ('disk', 'virtio', 'qcow2')
    assert disk.find('source').get('file') == '/default-pool/web-1.qcow2'
    assert cdrom.get('device') == 'cdrom' and cdrom.find('readonly') is not None
    assert cdrom.find('target').get('bus') == 'sata' and cdrom.find('source').get('file') == '/default-pool/web-1-seed.iso'
    nic = root.find('devices/interface')
    assert nic.get('type') == 'network' and nic.find('source').get('network') == 'default'
    assert nic.find('model').get('type') == 'virtio' and nic.find('mac') is None
    assert root.find('devices/serial') is not None and root.find('devices/console/target').get('type') == 'serial'


def test_domain_xml_metadata_is_in_the_namespace_with_the_leveller_prefix():
    text = member_xml()
    assert '<leveller:member xmlns:leveller="%s"' % NS in text and '</leveller:member>' in text
    member = ET.fromstring(text).find('metadata/{%s}member' % NS)
    assert member.get('group') == 'web' and member.find('volume').get('name') == 'web-1.qcow2'
    selfclosed = ET.fromstring(member_xml(metadata_xml='<member group="web"/>'))
    assert selfclosed.find('metadata/{%s}member' % NS).get('group') == 'web'


def test_domain_xml_options_for_tcg_machine_mac_and_scsi():
    root = ET.fromstring(member_xml(emulator_type='qemu', machine_type='q35', mac='52:54:00:00:00:07', cdrom_bus='scsi'))
    assert root.get('type') == 'qemu' and root.find('cpu') is None
    assert root.find('os/type').get('machine') == 'q35'
    assert root.find('devices/interface/mac').get('address') == '52:54:00:00:00:07'
    assert root.findall('devices/disk')[1].find('target').get('bus') == 'scsi'
    assert root.find('devices/controller').get('model') == 'virtio-scsi'


def test_domain_xml_escapes_what_it_is_given():
    root = ET.fromstring(member_xml(disk_path="/pool/a'b&c.qcow2", network='net"1'))
    assert root.find('devices/disk/source').get('file') == "/pool/a'b&c.qcow2"
    assert root.find('devices/interface/source').get('network') == 'net"1'


@pytest.mark.parametrize('kwargs, words', [
    ({'vcpus': 0}, 'template.vcpus'),
    ({'memory_mb': '1024'}, 'template.memory_mb'),
    ({'emulator_type': 'xen'}, 'emulator_type'),
    ({'cdrom_bus': 'ide'}, 'cdrom_bus'),
    ({'uuid': 'web-1'}, 'not a UUID'),
    ({'metadata_xml': '<member'}, 'not well-formed'),
    ({'metadata_xml': '<x:member xmlns:x="urn:y"/>'}, 'without a namespace prefix'),
])
def test_domain_xml_refuses_bad_input(kwargs, words):
    with pytest.raises(sl.ScalingActuatorError) as err:
        member_xml(**kwargs)
    assert words in str(err.value)


def test_domain_xml_defines_on_the_test_driver_and_keeps_its_metadata(conn):
    name = unique('web')
    dom = conn.defineXML(member_xml(name=name, uuid=str(uuid.uuid4()), machine_type='q35'))
    back = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0))
    assert back.tag == 'member' and back.get('group') == 'web'


# -- members --------------------------------------------------------------------------------

def create(conn, pool, base, name, **kwargs):
    overlay, seed = sl.member_volume_names(name)
    meta = '<member group="web"><volume name="%s"/><volume name="%s"/></member>' % (overlay, seed)
    return sl.create_member(conn, pool, base, name, SEED, 1, 512, 'default', meta, NS, **kwargs)


def test_create_then_remove_leaves_no_volume_behind(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    before = volume_names(pool)
    name = unique('web')
    domain_uuid = str(uuid.uuid4())
    volumes = create(conn, pool, base, name, uuid=domain_uuid)
    assert volumes == list(sl.member_volume_names(name))
    assert volume_names(pool) == before | set(volumes)
    dom = conn.lookupByName(name)
    assert dom.isActive() and dom.isPersistent() and dom.UUIDString() == domain_uuid
    disks = [d.find('source').get('file') for d in ET.fromstring(dom.XMLDesc(0)).findall('devices/disk')]
    assert disks == [pool.storageVolLookupByName(v).path() for v in volumes]
    assert ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)).get('group') == 'web'

    removed = sl.remove_member(conn, name, volumes, 'default-pool')
    assert removed == {'domain': name, 'volumes': volumes}
    assert volume_names(pool) == before
    assert base.name() in volume_names(pool)
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName(name)
    # A second run finds nothing and says so.
    assert sl.remove_member(conn, name, volumes, pool) == {'domain': None, 'volumes': []}


def test_remove_deletes_only_the_listed_volumes(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    name = unique('web')
    overlay, seed = create(conn, pool, base, name)
    removed = sl.remove_member(conn, name, [overlay], pool)
    assert removed == {'domain': name, 'volumes': [overlay]}
    assert seed in volume_names(pool) and overlay not in volume_names(pool)


def test_remove_of_a_stopped_domain_with_a_managed_save(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    name = unique('web')
    volumes = create(conn, pool, base, name)
    conn.lookupByName(name).managedSave(0)   # a plain undefine refuses this one
    assert sl.remove_member(conn, name, volumes, pool)['domain'] == name


def test_remove_refuses_volumes_someone_else_uses(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    first, second = unique('web'), unique('web')
    first_volumes = create(conn, pool, base, first)
    create(conn, pool, base, second)
    before = volume_names(pool)
    # Damaged metadata: the base volume, or the other member's overlay.
    for listed in ([base.name()] + first_volumes, [sl.member_volume_names(second)[0]]):
        with pytest.raises(sl.ScalingActuatorError) as err:
            sl.remove_member(conn, first, listed, pool)
        assert 'nothing was removed' in str(err.value) and err.value.failure == 'inconsistent'
        assert volume_names(pool) == before and conn.lookupByName(first).isActive()


def test_remove_refuses_a_volume_another_domain_names_by_pool_and_volume(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    name, other = unique('web'), unique('other')
    volumes = create(conn, pool, base, name)
    conn.defineXML("<domain type='kvm'><name>%s</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
                   "<devices><disk type='volume' device='disk'><source pool='default-pool' volume='%s'/>"
                   "<target dev='vda' bus='virtio'/></disk></devices></domain>" % (other, volumes[1]))
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.remove_member(conn, name, volumes, pool)
    assert '%s by domain %s' % (volumes[1], other) in str(err.value)


def test_a_domain_name_clash_removes_the_volumes_already_made(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    before = volume_names(pool)
    with pytest.raises(sl.ScalingActuatorError) as err:
        create(conn, pool, base, 'test')   # the test driver's own domain
    assert "'test'" in str(err.value) and 'exists' in str(err.value)
    assert volume_names(pool) == before
    assert conn.lookupByName('test').isActive()   # the other domain is untouched


def test_bad_domain_input_is_refused_before_any_volume(conn, pool, base):
    before = volume_names(pool)
    with pytest.raises(sl.ScalingActuatorError) as err:
        sl.create_member(conn, pool, base, unique('web'), SEED, 0, 512, 'default', '<member/>', NS)
    assert 'template.vcpus' in str(err.value)
    assert volume_names(pool) == before


def test_a_failed_upload_removes_the_overlay(conn, pool, base):
    before = volume_names(pool)
    with pytest.raises(sl.ScalingActuatorError) as err:
        create(conn, pool, base, unique('web'))
    assert 'uploading volume' in str(err.value)
    assert volume_names(pool) == before


class FailingStart(object):
    """A connection whose defined domains refuse to start (what a missing network does on QEMU)."""

    def __init__(self, conn):
        self.conn = conn
        self.defined = []

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def defineXML(self, xml):
        dom = self.conn.defineXML(xml)
        self.defined.append(dom.name())

        class Domain(object):
            def __getattr__(self, attr):
                return getattr(dom, attr)

            def create(self):
                raise libvirt.libvirtError('network default is not active')
        return Domain()


def test_a_failed_start_undefines_the_domain_and_removes_the_volumes(conn, pool, base, monkeypatch):
    monkeypatch.setattr(sl, 'upload_volume', fake_upload)
    before = volume_names(pool)
    failing = FailingStart(conn)
    name = unique('web')
    with pytest.raises(sl.ScalingActuatorError) as err:
        create(failing, pool, base, name)
    assert "starting domain '%s'" % name in str(err.value) and 'test:///default' in str(err.value)
    assert failing.defined == [name]
    assert name not in [d.name() for d in conn.listAllDomains(0)]
    assert volume_names(pool) == before


def test_domain_xml_without_network_has_no_nic_and_a_kernel_boots_directly():
    root = ET.fromstring(member_xml(network=None, kernel='/var/lib/guest/leveller-guest.bin'))
    assert root.find('devices/interface') is None
    assert root.find('os/kernel').text == '/var/lib/guest/leveller-guest.bin' and root.find('os/boot') is None
    assert ET.fromstring(member_xml()).find('os/boot').get('dev') == 'hd'
    assert ET.fromstring(member_xml()).find('os/kernel') is None
