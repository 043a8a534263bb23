"""Smoke check of the local test cloud (``cloud.sh smoke``), through the real
APIs with openstacksdk and Prometheus' HTTP API:

1. boot 2 servers with networks='none', targeted at compute1 (2.74 ``host``);
2. live-migrate one to compute2 (2.30, block_migration auto), ACTIVE there;
3. PromQL: per-host CPU answers for every host and follows the migration;
4. fault ``migration-fail``: migration ``failed``, server ACTIVE on source;
5. fault ``migration-hang``: migration stays ``running`` until aborted via
   DELETE /servers/{id}/migrations/{mid} (2.24), then ``cancelled`` and
   ACTIVE on source; a second hang is force-completed (2.22) instead;
6. the non-admin user ``leveller-demo`` can list its servers but not hypervisors.

Servers are deleted at the end (``--keep`` keeps them). Exit 0 if all pass.
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import openstack

NCOMPUTE = int(os.environ.get('NCOMPUTE', '4'))
PROM = os.environ.get('LEVELLER_PROMETHEUS_URL', 'http://127.0.0.1:9090')
CPU_Q = '1 - avg by (instance)(rate(node_cpu_seconds_total{mode="idle"}[1m]))'
MEM_Q = ('1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes')
results = []


def check(name, ok, detail=''):
    results.append((name, bool(ok), detail))
    print('%-4s %s %s' % ('ok' if ok else 'FAIL', name, detail), flush=True)
    return ok


def prom(q):
    url = PROM + '/api/v1/query?' + urllib.parse.urlencode({'query': q})
    with urllib.request.urlopen(url, timeout=5) as r:
        return {x['metric'].get('instance', ''): float(x['value'][1])
                for x in json.load(r)['data']['result']}


def api(conn, method, url, mv, **kw):
    r = conn.compute.request(url, method, microversion=mv, **kw)
    if r.status_code >= 400:
        raise RuntimeError('%s %s -> %s %s' % (method, url, r.status_code, r.text[:300]))
    return r.json() if r.content else {}


def server(conn, sid):
    return api(conn, 'GET', '/servers/%s' % sid, '2.74')['server']


def wait(fn, timeout, what, step=0.2):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise RuntimeError('timeout waiting for %s' % what)
        time.sleep(step)


def boot(conn, name, host, flavor, image, metadata):
    body = {'server': {'name': name, 'imageRef': image, 'flavorRef': flavor,
                       'networks': 'none', 'host': host,
                       'metadata': metadata}}
    return api(conn, 'POST', '/servers', '2.74', json=body)['server']['id']


def settled(conn, sid):
    s = server(conn, sid)
    if s['OS-EXT-STS:task_state'] is None and s['status'] in ('ACTIVE', 'ERROR'):
        return s
    return None


def finished(conn, sid):
    """Settled server whose last migration reached a final state."""
    s = settled(conn, sid)
    m = last_migration(conn, sid) if s else None
    if m and m['status'] in ('completed', 'failed', 'error', 'cancelled', 'done'):
        return s
    return None


def live_migrate(conn, sid, host):
    api(conn, 'POST', '/servers/%s/action' % sid, '2.30',
        json={'os-migrateLive': {'host': host, 'block_migration': 'auto'}})


def last_migration(conn, sid):
    ms = api(conn, 'GET', '/os-migrations?instance_uuid=%s' % sid, '2.59')['migrations']
    return sorted(ms, key=lambda m: m['id'])[-1] if ms else None


def set_meta(conn, sid, md):
    api(conn, 'POST', '/servers/%s/metadata' % sid, '2.1', json={'metadata': md})


def in_progress(conn, sid):
    ms = api(conn, 'GET', '/servers/%s/migrations' % sid, '2.24')['migrations']
    return ms[0] if ms else None


def running(conn, sid):
    m = in_progress(conn, sid)
    return m if m and m['status'] == 'running' else None


def main():
    keep = '--keep' in sys.argv
    conn = openstack.connect(cloud=os.environ.get('OS_CLOUD', 'leveller'))
    image = conn.image.find_image('leveller-image').id
    flavor = conn.compute.find_flavor('leveller.medium').id
    ids = []
    try:
        t = time.time()
        a = boot(conn, 'smoke-a', 'compute1', flavor, image,
                 {'leveller-test:cpu': '1.0', 'leveller-test:memory': '0.9'})
        b = boot(conn, 'smoke-b', 'compute1', flavor, image, {})
        ids += [a, b]
        sa = wait(lambda: settled(conn, a), 60, 'smoke-a ACTIVE')
        sb = wait(lambda: settled(conn, b), 60, 'smoke-b ACTIVE')
        check('boot 2 servers targeted at compute1',
              sa['status'] == sb['status'] == 'ACTIVE'
              and sa['OS-EXT-SRV-ATTR:host'] == sb['OS-EXT-SRV-ATTR:host'] == 'compute1',
              '%.1f s' % (time.time() - t))

        # let the feeder and Prometheus see the new load on compute1
        time.sleep(6)
        cpu0, mem0 = prom(CPU_Q), prom(MEM_Q)
        check('PromQL CPU answers for every host', len(cpu0) >= NCOMPUTE,
              ' '.join('%s=%.3f' % kv for kv in sorted(cpu0.items())))

        t = time.time()
        live_migrate(conn, a, 'compute2')
        s = wait(lambda: finished(conn, a), 60, 'live migration of smoke-a')
        m = last_migration(conn, a)
        lm = time.time() - t
        check('live-migrate smoke-a compute1 -> compute2',
              s['status'] == 'ACTIVE' and s['OS-EXT-SRV-ATTR:host'] == 'compute2'
              and m['status'] == 'completed', '%.1f s, migration %s' % (lm, m['status']))

        def moved():
            c, mm = prom(CPU_Q), prom(MEM_Q)
            # memory is a gauge: it follows at once; CPU is rate() over
            # a 1 m window of counters: it moves at once and settles in 1 m
            ok = (c['compute2:9100'] > cpu0['compute2:9100'] + 0.03
                  and mm['compute1:9100'] < mem0['compute1:9100'] - 0.05
                  and mm['compute2:9100'] > mem0['compute2:9100'] + 0.05)
            return (c, mm) if ok else None
        t = time.time()
        c1, m1 = wait(moved, 60, 'Prometheus to follow the migration', 1)
        check('PromQL follows the migration',
              True, '%.0f s; cpu compute1 %.3f->%.3f compute2 %.3f->%.3f; '
              'memory compute1 %.3f->%.3f compute2 %.3f->%.3f' % (
                  time.time() - t, cpu0['compute1:9100'], c1['compute1:9100'],
                  cpu0['compute2:9100'], c1['compute2:9100'],
                  mem0['compute1:9100'], m1['compute1:9100'],
                  mem0['compute2:9100'], m1['compute2:9100']))

        def inst_series():
            q = 'ceilometer_memory_usage{resource="%s"}' % a
            url = PROM + '/api/v1/query?' + urllib.parse.urlencode({'query': q})
            with urllib.request.urlopen(url, timeout=5) as r:
                res = json.load(r)['data']['result']
            return res if res and res[0]['metric'].get('vm_instance') == 'compute2' else None
        r = wait(inst_series, 30, 'ceilometer_memory_usage of smoke-a on compute2', 1)
        cpu_a = prom('rate(ceilometer_cpu{resource="%s"}[1m]) / 1e9' % a)
        check('per-instance ceilometer_* series',
              r and cpu_a and list(cpu_a.values())[0] > 0,
              'memory_usage %s MB, cpu %.2f vCPU-s/s' % (
                  r[0]['value'][1], list(cpu_a.values())[0] if cpu_a else -1))

        # fault: migration-fail
        set_meta(conn, b, {'leveller-test:fault': 'migration-fail'})
        t = time.time()
        live_migrate(conn, b, 'compute3')
        s = wait(lambda: finished(conn, b), 60, 'failed migration to settle')
        m = last_migration(conn, b)
        check('fault migration-fail: rolled back, ACTIVE on source',
              s['status'] == 'ACTIVE' and s['OS-EXT-SRV-ATTR:host'] == 'compute1'
              and m['status'] in ('failed', 'error'),
              '%.1f s, migration %s' % (time.time() - t, m['status']))

        # fault: migration-hang, aborted
        set_meta(conn, b, {'leveller-test:fault': 'migration-hang'})
        live_migrate(conn, b, 'compute3')
        mig = wait(lambda: running(conn, b), 30,
                   'hung migration to be running')
        time.sleep(3)
        still = in_progress(conn, b)
        s = server(conn, b)
        check('fault migration-hang: stays running',
              still and still['status'] == 'running'
              and s['OS-EXT-STS:task_state'] == 'migrating',
              'migration %s %s after 3 s' % (mig['id'], still and still['status']))
        t = time.time()
        api(conn, 'DELETE', '/servers/%s/migrations/%s' % (b, mig['id']), '2.24')
        s = wait(lambda: finished(conn, b), 60, 'aborted migration to settle')
        m = last_migration(conn, b)
        check('fault migration-hang: abort rolls back, ACTIVE on source',
              s['status'] == 'ACTIVE' and s['OS-EXT-SRV-ATTR:host'] == 'compute1'
              and m['status'] == 'cancelled',
              '%.1f s, migration %s' % (time.time() - t, m['status']))

        # hang again, then force-complete
        live_migrate(conn, b, 'compute3')
        mig = wait(lambda: running(conn, b), 30,
                   'hung migration to be running')
        api(conn, 'POST', '/servers/%s/migrations/%s/action' % (b, mig['id']),
            '2.22', json={'force_complete': None})
        s = wait(lambda: finished(conn, b), 60, 'force-completed migration')
        m = last_migration(conn, b)
        check('fault migration-hang: force-complete lands on destination',
              s['status'] == 'ACTIVE' and s['OS-EXT-SRV-ATTR:host'] == 'compute3'
              and m['status'] == 'completed', 'migration %s' % m['status'])
        set_meta(conn, b, {'leveller-test:fault': 'none'})

        # non-admin user
        demo = openstack.connect(cloud='leveller-demo')
        list(demo.compute.servers())
        try:
            list(demo.compute.hypervisors())
            denied = False
        except openstack.exceptions.ForbiddenException:
            denied = True
        check('non-admin leveller-demo: servers yes, hypervisors 403', denied)
    except Exception as e:
        check('smoke', False, str(e))
    finally:
        if not keep:
            for sid in ids:
                try:
                    conn.compute.delete_server(sid)
                except Exception:
                    pass
    failed = [r for r in results if not r[1]]
    print('smoke: %d checks, %d failed' % (len(results), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
