"""Helpers of cloud.sh that talk to the local cloud's APIs (openstacksdk).

    cloudctl.py register            service project/users/roles + catalog
    cloudctl.py wait services N T   wait until N nova-compute services are up
    cloudctl.py wait hypervisors N T
    cloudctl.py resources           flavors, image, demo project/user (idempotent)
    cloudctl.py wait-prometheus N T wait until Prometheus has CPU rates for N hosts
    cloudctl.py reset [--dry-run]   back to the known start: no instance, no server group,
                                    no aggregate, no allocation, every compute enabled, not
                                    forced down and up; says what it removed or changed

Run with the cloud venv's python; OS_CLIENT_CONFIG_FILE / OS_CLOUD are set by
cloud.sh. Exits non-zero with a message naming what is missing.
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import openstack

RUN = os.environ.get('LEVELLER_CLOUD_RUN', '')
LOG = os.path.join(RUN, 'log')
ADMIN = dict(auth_url='http://127.0.0.1:5000/v3', username='admin',
             password='admin', project_name='admin',
             user_domain_name='Default', project_domain_name='Default',
             region_name='RegionOne')

FLAVORS = [  # name, vcpus, ram MB, disk GB
    ('leveller.tiny', 1, 256, 1),
    ('leveller.small', 1, 512, 1),
    ('leveller.medium', 2, 1024, 1),
]
IMAGE = 'leveller-image'


def connect():
    return openstack.connect(**ADMIN)


def register():
    conn = connect()
    idc = conn.identity
    dom = idc.find_domain('default')
    svc_proj = (idc.find_project('service', domain_id=dom.id)
                or idc.create_project(name='service', domain_id=dom.id))
    admin_role = idc.find_role('admin')
    service_role = idc.find_role('service') or idc.create_role(name='service')
    idc.find_role('member') or idc.create_role(name='member')
    services = [  # (user, service name, type, url)
        ('nova', 'nova', 'compute', 'http://127.0.0.1:8774/v2.1'),
        ('placement', 'placement', 'placement', 'http://127.0.0.1:8778'),
        ('glance', 'glance', 'image', 'http://127.0.0.1:9292'),
        ('neutron', 'neutron', 'network', 'http://127.0.0.1:9696'),
    ]
    for user, name, stype, url in services:
        u = idc.find_user(user, domain_id=dom.id) or idc.create_user(
            name=user, password='service', domain_id=dom.id)
        for r in (admin_role, service_role):
            idc.assign_project_role_to_user(svc_proj, u, r)
        s = idc.find_service(name) or idc.create_service(name=name, type=stype)
        existing = {e.interface for e in idc.endpoints(service_id=s.id)}
        for iface in ('public', 'internal', 'admin'):
            if iface not in existing:
                idc.create_endpoint(service_id=s.id, interface=iface, url=url,
                                    region_id='RegionOne')
    print('keystone: service users and catalog registered')


def resources():
    conn = connect()
    made = []
    for name, vcpus, ram, disk in FLAVORS:
        if not conn.compute.find_flavor(name, ignore_missing=True):
            conn.compute.create_flavor(name=name, id=name, vcpus=vcpus,
                                       ram=ram, disk=disk, is_public=True)
            made.append(name)
    if not conn.image.find_image(IMAGE, ignore_missing=True):
        conn.create_image(IMAGE, data=b'\0' * 1024, disk_format='raw',
                          container_format='bare', visibility='public',
                          wait=True)
        made.append(IMAGE)
    idc = conn.identity
    dom = idc.find_domain('default')
    proj = idc.find_project('demo', domain_id=dom.id)
    if not proj:
        proj = idc.create_project(name='demo', domain_id=dom.id)
        made.append('project demo')
    user = idc.find_user('demo', domain_id=dom.id)
    if not user:
        user = idc.create_user(name='demo', password='demo', domain_id=dom.id,
                               default_project_id=proj.id)
        made.append('user demo')
    idc.assign_project_role_to_user(proj, user, idc.find_role('member'))
    print('resources: flavors %s, image %s, user demo/demo (member of demo)%s'
          % (','.join(f[0] for f in FLAVORS), IMAGE,
             (' [created: %s]' % ', '.join(made)) if made else ' [all existed]'))


def wait(what, n, timeout):
    deadline = time.time() + timeout
    want = ['compute%d' % i for i in range(1, n + 1)]
    got, err = [], None
    conn = None
    while True:
        try:
            conn = conn or connect()
            if what == 'services':
                got = sorted(s.host for s in conn.compute.services(
                    binary='nova-compute') if s.state == 'up')
            else:
                got = sorted(h.name for h in conn.compute.hypervisors()
                             if h.state in ('up', None))
            err = None
            if all(w in got for w in want):
                print('ready: %s %s' % (what, ' '.join(got)))
                return
        except Exception as e:  # APIs may still be warming up
            err = repr(e)[:200]
            conn = None
        if time.time() > deadline:
            missing = [w for w in want if w not in got]
            msg = 'cloud.sh: not ready after %ds: %s missing: %s' % (
                timeout, what, ' '.join(missing) or '?')
            if err:
                msg += '\n  last error: %s' % err
            if what == 'services':
                msg += '\n  read: ' + ' '.join(
                    os.path.join(LOG, 'nova-%s.log' % m) for m in missing)
            else:
                msg += ('\n  read: %s and %s' % (
                    os.path.join(LOG, 'discover_hosts.log'),
                    os.path.join(LOG, 'nova-scheduler.log')))
            sys.exit(msg)
        time.sleep(0.5)


def prom_query(q):
    url = 'http://127.0.0.1:9090/api/v1/query?' + urllib.parse.urlencode(
        {'query': q})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)['data']['result']


def wait_prometheus(n, timeout):
    deadline = time.time() + timeout
    q = 'count by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m]))'
    got, err = [], None
    while True:
        try:
            got = sorted(r['metric'].get('instance', '') for r in prom_query(q))
            err = None
            if len(got) >= n:
                print('ready: prometheus has CPU rates for %s' % ' '.join(got))
                return
        except Exception as e:
            err = repr(e)[:200]
        if time.time() > deadline:
            sys.exit('cloud.sh: not ready after %ds: prometheus has CPU rates '
                     'for %d of %d hosts (%s)%s\n  read: %s, %s, %s' % (
                         timeout, len(got), n, ' '.join(got),
                         ('; last error: ' + err) if err else '',
                         os.path.join(LOG, 'feeder.out'),
                         os.path.join(LOG, 'pushgateway.out'),
                         os.path.join(LOG, 'prometheus.out')))
        time.sleep(0.5)


def _names(items, limit=12):
    """'a, b, c' or 'a, b, ... (N in all)': what reset says it removed, short enough to read."""
    items = sorted(items)
    if len(items) <= limit:
        return ', '.join(items)
    return '%s, ... (%d in all)' % (', '.join(items[:limit]), len(items))


def _wait_gone(conn, ids, timeout):
    deadline = time.time() + timeout
    left = set(ids)
    while left and time.time() < deadline:
        present = {s.id for s in conn.compute.servers(all_projects=True)}
        left &= present
        if left:
            time.sleep(0.5)
    return left


def reset(dry_run=False):
    """Bring the local cloud back to its known start and say every change made.

    Tests and the demo start from here, whatever an earlier run left behind (its instances,
    a host it disabled or forced down, a migration it left hanging when it was interrupted).
    This is the project's own test cloud: nothing here is an operator's.
    """
    conn = connect()
    said = []

    def say(msg):
        said.append(msg)
        print('reset: %s%s' % ('would ' if dry_run else '', msg))

    # 1. compute services first: an instance on a forced-down host cannot be deleted cleanly
    resp = conn.compute.get('/os-services?binary=nova-compute', microversion='2.53')
    for svc in sorted(resp.json()['services'], key=lambda s: s['host']):
        body = {}
        if svc.get('forced_down'):
            body['forced_down'] = False
        if svc['status'] != 'enabled':
            body['status'] = 'enabled'
        if not body:
            continue
        say('%s %s (was: %s%s)' % (
            'clear forced_down on' if 'forced_down' in body else 'enable', svc['host'],
            'forced down, ' if svc.get('forced_down') else '',
            'disabled: %r' % (svc.get('disabled_reason') or '') if svc['status'] != 'enabled' else 'enabled'))
        if dry_run:
            continue
        deadline = time.time() + 120
        while True:
            r = conn.compute.put('/os-services/%s' % svc['id'], json=body, microversion='2.53')
            if r.status_code < 400:
                break
            if time.time() > deadline:
                sys.exit('cloud.sh reset: Nova refused to clear %s on %s: HTTP %s %s' % (
                    body, svc['host'], r.status_code, r.text[:300]))
            time.sleep(3)  # un-forcing waits for a restarted compute to clean up its evacuations

    # 2. migrations still running (an interrupted fault case): abort them, so no compute keeps
    # copying an instance that is about to be deleted
    servers = list(conn.compute.servers(details=True, all_projects=True))
    for s in servers:
        if s.task_state != 'migrating':
            continue
        r = conn.compute.get('/servers/%s/migrations' % s.id, microversion='2.24')
        for m in (r.json().get('migrations', []) if r.status_code < 400 else []):
            say('abort migration %s of %s (%s -> %s, %s)' % (
                m['id'], s.name, m.get('source_compute'), m.get('dest_compute'), m.get('status')))
            if not dry_run:
                conn.compute.delete('/servers/%s/migrations/%s' % (s.id, m['id']), microversion='2.24')

    # 3. every instance, whoever made it
    if servers:
        by_host = {}
        for s in servers:
            by_host.setdefault(s.compute_host or '(no host)', []).append(s.name)
        say('delete %d instance(s): %s' % (len(servers), '; '.join(
            '%s: %s' % (h, _names(n)) for h, n in sorted(by_host.items()))))
    if servers and not dry_run:
        for s in servers:
            if s.task_state or s.status == 'ERROR':
                # a task left half way blocks nothing in delete, but an ERROR instance keeps
                # its allocations until reset: make both plain before deleting
                conn.compute.reset_server_state(s, 'active')
            conn.compute.delete_server(s.id, ignore_missing=True)
        left = _wait_gone(conn, [s.id for s in servers], 120)
        if left:
            for sid in left:
                conn.compute.reset_server_state(sid, 'error')
                conn.compute.delete_server(sid, ignore_missing=True)
            left = _wait_gone(conn, left, 60)
        if left:
            sys.exit('cloud.sh reset: %d instance(s) would not go away: %s; read the nova-compute logs under %s'
                     % (len(left), ', '.join(sorted(left)), LOG))

    # 4. server groups and aggregates made by tests
    groups = list(conn.compute.server_groups(all_projects=True))
    if groups:
        say('delete %d server group(s): %s' % (len(groups), _names('%s (%s)' % (g.name, g.policy) for g in groups)))
        if not dry_run:
            for g in groups:
                conn.compute.delete_server_group(g, ignore_missing=True)
    for agg in list(conn.compute.aggregates()):
        say('delete aggregate %s (hosts: %s, AZ %s)' % (
            agg.name, ', '.join(agg.hosts or []) or 'none', agg.availability_zone or 'none'))
        if not dry_run:
            for h in agg.hosts or []:
                conn.compute.remove_host_from_aggregate(agg, h)
            conn.compute.delete_aggregate(agg, ignore_missing=True)

    # 5. allocations no instance explains (a migration record's, left by an interrupted move);
    # in a dry run the instances' own allocations would go with them, so they are not listed
    placement = conn.placement
    going = set(s.id for s in servers) if dry_run else set()
    for rp in placement.get('/resource_providers', microversion='1.14').json()['resource_providers']:
        allocs = placement.get('/resource_providers/%s/allocations' % rp['uuid']).json().get('allocations', {})
        for consumer, alloc in sorted(allocs.items()):
            if consumer in going:
                continue
            say('delete allocation of consumer %s on %s (%s)' % (
                consumer, rp['name'], ', '.join('%s=%s' % kv for kv in sorted(alloc['resources'].items()))))
            if not dry_run:
                placement.delete('/allocations/%s' % consumer)

    if not said:
        print('reset: the cloud was already at its start (no instance, every compute enabled)')
    return said


def main(argv):
    cmd = argv[1]
    if cmd == 'register':
        register()
    elif cmd == 'resources':
        resources()
    elif cmd == 'wait':
        wait(argv[2], int(argv[3]), float(argv[4]))
    elif cmd == 'reset':
        reset(dry_run='--dry-run' in argv[2:])
    elif cmd == 'wait-prometheus':
        wait_prometheus(int(argv[2]), float(argv[3]))
    else:
        sys.exit('unknown command %s' % cmd)


if __name__ == '__main__':
    main(sys.argv)
