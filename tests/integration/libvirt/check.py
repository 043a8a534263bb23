"""Check the plain-libvirt test bed (libvirt.sh up): live migrations between its two hosts.

Connects to both hosts as the controller does (LEVELLER_LIBVIRT_URIS, else the bed's own URIs),
lists the guests, live-migrates one guest peer-to-peer to the other host and back (persistent
on the destination, undefined on the source), each time checking it runs on the destination
with the same UUID and is gone from the source, then starts a migration capped at 1 MiB/s,
aborts it with abortJob() after 2 s, and checks the guest still runs on its source only.
Prints the measured times. Run with the tools venv (it has libvirt-python):

    ~/.cache/cloudops-leveller/venv/bin/python tests/integration/libvirt/check.py [--guest lv-a]
"""
import argparse
import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET

import libvirt

DEFAULT_URIS = {'lvhost1': 'qemu+tcp://10.213.77.11/system',
                'lvhost2': 'qemu+tcp://10.213.77.12/system'}
FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
         | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)

failures = []


def check(ok, what):
    """Print one check line and remember a failure."""
    print('%s %s' % ('ok  ' if ok else 'FAIL', what))
    if not ok:
        failures.append(what)
    return ok


def silence(ctx, err):
    """libvirt prints every error on stderr by default; the checks report them."""


def where(conns, name):
    """Host -> (state, persistent, UUID) of every host that has a domain called name."""
    found = {}
    for host, conn in conns.items():
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue
            raise
        found[host] = (dom.state()[0], bool(dom.isPersistent()), dom.UUIDString())
    return found


def migrate(conns, uris, name, src, dst, params=None):
    """Peer-to-peer live migration of name from src to dst; returns the seconds it took."""
    dom = conns[src].lookupByName(name)
    start = time.monotonic()
    dom.migrateToURI3(uris[dst], params or {}, FLAGS)
    return time.monotonic() - start


def runs_only_on(conns, name, host, uuid, what):
    """The guest runs on host, persistent, with uuid, and no other host has it."""
    found = where(conns, name)
    state = found.get(host)
    check(state is not None and state[0] == libvirt.VIR_DOMAIN_RUNNING and state[1] and state[2] == uuid,
          '%s: %s runs on %s, persistent, UUID %s (seen: %s)' % (what, name, host, uuid, found))
    others = sorted(h for h in found if h != host)
    check(not others, '%s: %s is on no other host (seen on %s)' % (what, name, others or 'none'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--guest', default='lv-a', help='the guest to move (default lv-a)')
    parser.add_argument('--abort-after', type=float, default=2.0, help='seconds before abortJob (2)')
    parser.add_argument('--bandwidth', type=int, default=1, help='MiB/s of the aborted migration (1)')
    args = parser.parse_args()
    uris = json.loads(os.environ.get('LEVELLER_LIBVIRT_URIS') or 'null') or DEFAULT_URIS
    libvirt.registerErrorHandler(silence, None)

    conns = {h: libvirt.open(u) for h, u in sorted(uris.items())}
    for host, conn in conns.items():
        info = conn.getInfo()
        doms = sorted('%s(%s)' % (d.name(), 'running' if d.isActive() else 'inactive')
                      for d in conn.listAllDomains())
        print('%s: %s, host UUID %s, %d CPUs, %d MiB, domains %s'
              % (host, uris[host], ET.fromstring(conn.getCapabilities()).findtext('host/uuid'),
                 info[2], info[1], ', '.join(doms) or 'none'))
    hosts = sorted(conns)
    check(len(hosts) == 2, 'two hosts: %s' % hosts)
    found = where(conns, args.guest)
    check(len(found) == 1, '%s is defined on exactly one host: %s' % (args.guest, sorted(found)))
    if len(found) != 1:
        return 1
    src = next(iter(found))
    dst = [h for h in hosts if h != src][0]
    uuid = found[src][2]
    mem = conns[src].lookupByName(args.guest).maxMemory() // 1024
    print('guest %s: %d MiB, on %s, UUID %s' % (args.guest, mem, src, uuid))

    times = {}
    for a, b in ((src, dst), (dst, src)):
        try:
            times['%s -> %s' % (a, b)] = t = migrate(conns, uris, args.guest, a, b)
            check(True, 'migrated %s %s -> %s in %.2f s' % (args.guest, a, b, t))
        except libvirt.libvirtError as exc:
            check(False, 'migrating %s %s -> %s: %s' % (args.guest, a, b, exc))
            return 1
        runs_only_on(conns, args.guest, b, uuid, 'after %s -> %s' % (a, b))
        stats = conns[b].lookupByName(args.guest).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if stats:
            print('     job: %.1f MiB sent, %d ms total, %d ms downtime'
                  % (stats.get('data_processed', 0) / 2 ** 20, stats.get('time_elapsed', 0),
                     stats.get('downtime', 0)))

    # A migration that would take far longer than the deadline: abort it, the guest stays.
    params = {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: args.bandwidth}
    result = {}

    def slow():
        # its own connection: the main thread's calls must not queue behind this one
        conn = libvirt.open(uris[src])
        start = time.monotonic()
        try:
            conn.lookupByName(args.guest).migrateToURI3(uris[dst], params, FLAGS)
            result['error'] = None
        except libvirt.libvirtError as exc:
            result['error'] = exc
        result['seconds'] = time.monotonic() - start
        conn.close()

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    time.sleep(args.abort_after)
    dom = conns[src].lookupByName(args.guest)
    job = dom.jobStats()
    check(job.get('type') == libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
          'a migration job runs on %s after %.0f s (%.1f of %.1f MiB sent)'
          % (src, args.abort_after, job.get('data_processed', 0) / 2 ** 20,
             job.get('data_total', 0) / 2 ** 20))
    t_abort = time.monotonic()
    dom.abortJob()
    thread.join(60)
    t_abort = time.monotonic() - t_abort
    check(not thread.is_alive(), 'the migration call returned after abortJob')
    err = result.get('error')
    check(err is not None and err.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED,
          'the capped migration failed as aborted (%s)' % (err or 'it succeeded'))
    runs_only_on(conns, args.guest, src, uuid, 'after the aborted migration')
    times['aborted %s -> %s (%d MiB/s)' % (src, dst, args.bandwidth)] = result.get('seconds', -1)

    print('times:')
    for what, secs in times.items():
        print('  %-34s %6.2f s' % (what, secs))
    print('  %-34s %6.2f s' % ('abortJob() until the call returned', t_abort))
    for conn in conns.values():
        conn.close()
    if failures:
        print('%d check(s) failed' % len(failures))
        return 1
    print('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
