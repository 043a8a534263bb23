"""Make the local cloud deliberately unbalanced for `make demo`.

Runs after ``cloud.sh reset`` (scripts/demo.sh), so the cloud holds no instance and every host is
enabled: boots a busy pile on one host and a little on two others, through the real Nova API
(targeted boots, microversion 2.74).
The instances carry ``leveller-test:cpu`` / ``leveller-test:memory`` metadata, which the local
cloud's telemetry feeder turns into per-host Prometheus series.
"""
import os
import sys
import time

import openstack

LAYOUT = [  # (host, count, cpu busy fraction, memory fraction)
    ('compute1', 8, 0.9, 0.8),
    ('compute2', 3, 0.5, 0.6),
    ('compute3', 1, 0.2, 0.5),
]


def main():
    conn = openstack.connect(cloud=os.environ.get('OS_CLOUD', 'leveller'))
    left = [s.name for s in conn.compute.servers(all_projects=True)]
    if left:
        sys.exit('demo: the cloud still holds %d instance(s) after the reset (%s); run '
                 "'tests/integration/cloud/cloud.sh reset' and read what it says" % (len(left), ', '.join(sorted(left)[:5])))
    flavor = conn.compute.find_flavor('leveller.small', ignore_missing=False)
    image = conn.image.find_image('leveller-image', ignore_missing=False)
    n = 0
    for host, count, cpu, mem in LAYOUT:
        for dummy in range(count):
            n += 1
            body = {'server': {
                'name': 'demo-%02d' % n, 'flavorRef': flavor.id, 'imageRef': image.id,
                'networks': 'none', 'host': host,
                'metadata': {'leveller-test:cpu': str(cpu), 'leveller-test:memory': str(mem)}}}
            resp = conn.compute.post('/servers', json=body, microversion='2.74')
            if resp.status_code >= 400:
                sys.exit('demo: boot on %s failed: HTTP %s %s' % (host, resp.status_code, resp.text))
            server = conn.compute.get_server(resp.json()['server']['id'])
            conn.compute.wait_for_server(server, status='ACTIVE', failures=['ERROR'], interval=0.5, wait=120)
    print('demo: booted %d instances: %s' % (n, ', '.join('%s x%d' % (row[0], row[1]) for row in LAYOUT)))


if __name__ == '__main__':
    start = time.time()
    main()
    print('demo: unbalanced start ready in %.0f s' % (time.time() - start))
