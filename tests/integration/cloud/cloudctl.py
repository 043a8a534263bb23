"""Helpers of cloud.sh that talk to the local cloud's APIs (openstacksdk).

    cloudctl.py register            service project/users/roles + catalog
    cloudctl.py wait services N T   wait until N nova-compute services are up
    cloudctl.py wait hypervisors N T
    cloudctl.py resources           flavors, image, demo project/user (idempotent)
    cloudctl.py wait-prometheus N T wait until Prometheus has CPU rates for N hosts

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


def main(argv):
    cmd = argv[1]
    if cmd == 'register':
        register()
    elif cmd == 'resources':
        resources()
    elif cmd == 'wait':
        wait(argv[2], int(argv[3]), float(argv[4]))
    elif cmd == 'wait-prometheus':
        wait_prometheus(int(argv[2]), float(argv[3]))
    else:
        sys.exit('unknown command %s' % cmd)


if __name__ == '__main__':
    main(sys.argv)
