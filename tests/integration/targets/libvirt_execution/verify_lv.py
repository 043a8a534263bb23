#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the libvirt_execution target, read straight from the two test hosts (read-only).

  verify_lv.py census OUT.json [EXPECTED.json]   every known guest runs exactly once, on one host;
                                                 with EXPECTED, on the host it names; writes {guest: host}
  verify_lv.py moved BEFORE.json AFTER.json RESULT.json   the moves of a result match the census change
  verify_lv.py marked HOST yes|no                 the host carries the maintenance mark, or not
  verify_lv.py push PUSHGATEWAY HOST=CPU,...      host and instance CPU gauges for the Prometheus source
"""
from __future__ import absolute_import, division, print_function

import json
import os
import sys

import libvirt

URIS = json.loads(os.environ['LEVELLER_LIBVIRT_URIS'])
HOMES = json.loads(os.environ['LEVELLER_LIBVIRT_HOMES'])
libvirt.registerErrorHandler(lambda ctx, err: None, None)


def census():
    where = dict((g, []) for g in HOMES)
    states = {}
    for host, uri in sorted(URIS.items()):
        conn = libvirt.openReadOnly(uri)
        try:
            for dom in conn.listAllDomains(0):
                name = dom.name()
                if name not in where:
                    sys.exit('census: unknown domain %s on %s' % (name, host))
                where[name].append(host)
                states[(name, host)] = dom.state()[0]
        finally:
            conn.close()
    out = {}
    for guest, hosts in sorted(where.items()):
        if len(hosts) != 1:
            sys.exit('census: %s is on %d hosts (%s): exactly one copy expected' % (guest, len(hosts), hosts))
        if states[(guest, hosts[0])] != libvirt.VIR_DOMAIN_RUNNING:
            sys.exit('census: %s is not running on %s (state %s)' % (guest, hosts[0], states[(guest, hosts[0])]))
        out[guest] = hosts[0]
    return out


def main(argv):
    cmd = argv[1]
    if cmd == 'census':
        now = census()
        if len(argv) > 3:
            expected = json.load(open(argv[3]))
            wrong = dict((g, (h, now[g])) for g, h in expected.items() if now[g] != h)
            if wrong:
                sys.exit('census: guests not on the expected host (expected, found): %s' % wrong)
        with open(argv[2], 'w') as f:
            json.dump(now, f)
        print('census: %d guests, each running once: %s' % (len(now), ', '.join('%s@%s' % kv for kv in sorted(now.items()))))
    elif cmd == 'moved':
        before, after, result = (json.load(open(p)) for p in argv[2:5])
        moves = result.get('moves') or []
        done = dict((m['name'], m) for m in moves if m['result'] == 'moved')
        for guest in HOMES:
            expected = done[guest]['destination'] if guest in done else before[guest]
            if after[guest] != expected:
                sys.exit('moved: %s is on %s, expected %s (result %s)' % (guest, after[guest], expected,
                                                                          [m for m in moves if m['name'] == guest]))
        print('moved: %d move(s) done, every guest where the result says' % len(done))
    elif cmd == 'marked':
        conn = libvirt.openReadOnly(URIS[argv[2]])
        try:
            names = [s.usageID() for s in conn.listAllSecrets(0)]
        finally:
            conn.close()
        has = 'cloudops-leveller-maintenance' in names
        if has != (argv[3] == 'yes'):
            sys.exit('marked: %s has%s the maintenance mark' % (argv[2], '' if has else ' not'))
        print('marked: %s %s' % (argv[2], 'has the maintenance mark' if has else 'has no maintenance mark'))
    elif cmd == 'push':
        import requests
        gateway, spec = argv[2], argv[3]
        uuids = dict((g, u) for g, u in json.loads(os.environ['LEVELLER_LIBVIRT_UUIDS']).items())
        for item in spec.split(','):
            host, cpu = item.split('=')
            body = '# TYPE leveller_lvtest_host_cpu gauge\nleveller_lvtest_host_cpu %s\n' % cpu
            body += '# TYPE leveller_lvtest_host_memory gauge\nleveller_lvtest_host_memory 0.2\n'
            # what the default last-sample query (staleness) reads, as node-exporter would give it
            body += '# TYPE node_memory_MemAvailable_bytes gauge\nnode_memory_MemAvailable_bytes 1e9\n'
            r = requests.put('%s/metrics/job/lvtest/instance/%s:9100' % (gateway, host), data=body, timeout=10)
            r.raise_for_status()
        body = '# TYPE leveller_lvtest_instance_cpu gauge\n' + ''.join(
            'leveller_lvtest_instance_cpu{resource="%s"} 1\n' % u for u in sorted(uuids.values()))
        r = requests.put('%s/metrics/job/lvtest_instances' % gateway, data=body, timeout=10)
        r.raise_for_status()
        print('push: host CPU %s; every guest 1 busy vCPU' % spec)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
