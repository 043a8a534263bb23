#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the libvirt_scaling_group target, read straight from the two test hosts.

  verify_sg.py census GROUP OUT.json [BEFORE.json]   every known guest runs once, on its home host;
                                  any other domain is a member of GROUP; with BEFORE, each guest
                                  has the same host and domain id (never restarted or moved)
  verify_sg.py members GROUP      the group's members as JSON (from their metadata)
  verify_sg.py volumes            the volumes of leveller-pool on each host, as JSON
  verify_sg.py seed HOST VOLUME   the files of a seed volume, downloaded through a libvirt stream
  verify_sg.py push GATEWAY UUID=CPU,...   each member's CPU share as a gauge for Prometheus
"""
from __future__ import absolute_import, division, print_function

import io
import json
import os
import sys
import xml.etree.ElementTree as ET

import libvirt

URIS = json.loads(os.environ['LEVELLER_LIBVIRT_URIS'])
HOMES = json.loads(os.environ['LEVELLER_LIBVIRT_HOMES'])
NS = 'urn:cloudops-leveller:scaling:1'
POOL = 'leveller-pool'
libvirt.registerErrorHandler(lambda ctx, err: None, None)


def each_domain():
    for host, uri in sorted(URIS.items()):
        conn = libvirt.openReadOnly(uri)
        try:
            for dom in conn.listAllDomains(0):
                yield host, dom
        finally:
            conn.close()


def census(group, out, before=None):
    where = dict((g, []) for g in HOMES)
    for host, dom in each_domain():
        name = dom.name()
        if name in where:
            state = dom.state()[0]
            if state != libvirt.VIR_DOMAIN_RUNNING:
                sys.exit('census: %s is not running on %s (state %s)' % (name, host, state))
            where[name].append([host, dom.ID()])
        elif not name.startswith(group + '-'):
            sys.exit('census: unknown domain %s on %s' % (name, host))
    now = {}
    for guest, copies in sorted(where.items()):
        if len(copies) != 1 or copies[0][0] != HOMES[guest]:
            sys.exit('census: %s should run once on %s, found %s' % (guest, HOMES[guest], copies))
        now[guest] = copies[0]
    if before is not None:
        then = json.load(open(before))
        changed = dict((g, (then[g], now[g])) for g in then if then[g] != now[g])
        if changed:
            sys.exit('census: guests moved or restarted (before, after): %s' % changed)
    with open(out, 'w') as handle:
        json.dump(now, handle)
    print('census: %s untouched' % ', '.join('%s@%s' % (g, h) for g, (h, _id) in sorted(now.items())))


def members(group):
    found = []
    for host, dom in each_domain():
        if not dom.name().startswith(group + '-'):
            continue
        try:
            text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)
        except libvirt.libvirtError:
            continue
        root = ET.fromstring(text)
        if root.get('group') != group:
            continue
        found.append({'name': dom.name(), 'host': host, 'uuid': dom.UUIDString(), 'template': root.get('template'),
                      'running': dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING,
                      'memory_mb': dom.info()[1] // 1024,
                      'volumes': [v.get('name') for v in root if v.tag.endswith('volume')]})
    return sorted(found, key=lambda m: m['name'])


def volumes():
    out = {}
    for host, uri in sorted(URIS.items()):
        conn = libvirt.openReadOnly(uri)
        try:
            pool = conn.storagePoolLookupByName(POOL)
            out[host] = sorted(pool.listVolumes())
        finally:
            conn.close()
    return out


def seed(host, name):
    import pycdlib
    conn = libvirt.open(URIS[host])  # streams need a read-write connection
    try:
        vol = conn.storagePoolLookupByName(POOL).storageVolLookupByName(name)
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        chunks = []
        stream.recvAll(lambda st, data, buf: buf.append(data) or len(data), chunks)
        stream.finish()
    finally:
        conn.close()
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(b''.join(chunks)))
    try:
        files = {'volume_label': iso.pvd.volume_identifier.decode('ascii').strip()}
        for child in iso.list_children(rr_path='/'):
            if child.is_file() and child.rock_ridge is not None:
                fname = child.rock_ridge.name().decode('utf-8')
                data = io.BytesIO()
                iso.get_file_from_iso_fp(data, rr_path='/' + fname)
                files[fname] = data.getvalue().decode('utf-8')
        return files
    finally:
        iso.close()


def push(gateway, spec):
    import requests
    body = '# TYPE leveller_sgtest_member_cpu gauge\n'
    for item in spec.split(','):
        uuid, cpu = item.split('=')
        body += 'leveller_sgtest_member_cpu{uuid="%s"} %s\n' % (uuid, cpu)
    r = requests.put('%s/metrics/job/sgtest' % gateway, data=body, timeout=10)
    r.raise_for_status()
    print('push: %s' % spec)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ''
    if cmd == 'census':
        census(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    elif cmd == 'members':
        print(json.dumps(members(argv[2])))
    elif cmd == 'volumes':
        print(json.dumps(volumes()))
    elif cmd == 'seed':
        print(json.dumps(seed(argv[2], argv[3])))
    elif cmd == 'push':
        push(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
