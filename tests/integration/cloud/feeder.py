"""Telemetry feeder of the local test cloud.

Every INTERVAL seconds it reads where the instances really are (ONE
``GET /servers/detail?all_tenants=1`` per cycle, pages followed), derives a
load per fake hypervisor and pushes node-exporter-shaped series to the real
Prometheus Pushgateway, which the real Prometheus scrapes every 2 s with
``honor_labels: true``:

* per host ``computeN`` (grouping job="node", instance="computeN:9100"):
  ``node_cpu_seconds_total{cpu="0".."9", mode="idle|user|system"}`` counters,
  ``node_memory_MemTotal_bytes`` and ``node_memory_MemAvailable_bytes``;
* per running instance (grouping job="ceilometer"), Ceilometer-exporter-shaped:
  ``ceilometer_cpu{resource="<uuid>", ...}`` (cumulative CPU ns) and
  ``ceilometer_memory_usage{resource="<uuid>", ...}`` (MB).

Model: an instance whose power state is RUNNING loads its host with
``leveller-test:cpu`` (busy fraction of its vCPUs, default 0.1) and
``leveller-test:memory`` (fraction of its RAM, default 0.5) from its
metadata. Host CPU = 0.05 + sum(cpu * vcpus) / host vCPUs; host memory =
0.10 + sum(memory * RAM) / host RAM; both clamped to [0, 1]. Host capacity
is MediumFakeDriver's: 10 vCPUs, 8192 MB. So a live migration moves load.

Overrides: ``$LEVELLER_CLOUD_RUN/load.json`` written by ``cloud.sh load``::

    {"hosts": {"compute2": {"cpu": 0.9, "memory": 0.8},
               "compute3": {"absent": true}}}

``absent`` deletes the host's group from the Pushgateway (a host with no
metrics); ``cpu``/``memory`` fix that host's value. The computed state of the
last cycle is in ``$LEVELLER_CLOUD_RUN/feeder-state.json``.
"""
import json
import logging
import os
import sys
import time

import openstack
import requests

RUN = os.environ['LEVELLER_CLOUD_RUN']
NCOMPUTE = int(os.environ.get('NCOMPUTE', '4'))
INTERVAL = float(os.environ.get('LEVELLER_FEEDER_INTERVAL', '2'))
PUSHGATEWAY = os.environ.get('LEVELLER_PUSHGATEWAY_URL', 'http://127.0.0.1:9091')
OVERRIDES = os.path.join(RUN, 'load.json')
STATE = os.path.join(RUN, 'feeder-state.json')

HOST_VCPUS = 10          # nova.virt.fake.MediumFakeDriver.vcpus
HOST_MEMORY_MB = 8192    # nova.virt.fake.MediumFakeDriver.memory_mb
BASE_CPU = 0.05
BASE_MEMORY = 0.10
DEFAULT_CPU = 0.1
DEFAULT_MEMORY = 0.5
RUNNING = 1              # power_state RUNNING

logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format='%(asctime)s feeder %(message)s')
LOG = logging.getLogger()


def clamp(x):
    return max(0.0, min(1.0, x))


def frac(md, key, default):
    try:
        return clamp(float(md.get(key, default)))
    except (TypeError, ValueError):
        return default


def connect():
    return openstack.connect(
        auth_url='http://127.0.0.1:5000/v3', username='admin', password='admin',
        project_name='admin', user_domain_name='Default',
        project_domain_name='Default', region_name='RegionOne')


def list_servers(conn):
    """All servers of all projects: one request per page (1000 per page)."""
    out = []
    url = '/servers/detail?all_tenants=1&limit=1000'
    while url:
        r = conn.compute.get(url, microversion='2.47')
        r.raise_for_status()
        body = r.json()
        out.extend(body.get('servers', []))
        url = None
        for link in body.get('servers_links', []):
            if link.get('rel') == 'next':
                url = link['href'].split('/v2.1', 1)[-1]
    return out


def read_overrides():
    try:
        with open(OVERRIDES) as f:
            return json.load(f).get('hosts', {})
    except FileNotFoundError:
        return {}
    except Exception as e:
        LOG.warning('ignoring unreadable %s: %s', OVERRIDES, e)
        return {}


def esc(v):
    return str(v).replace('\\', '\\\\').replace('"', '\\"').replace('\n', ' ')


def labels(d):
    return '{' + ','.join('%s="%s"' % (k, esc(v)) for k, v in d.items()) + '}'


class Feeder:
    def __init__(self):
        self.conn = None
        self.connected_at = 0.0
        self.servers = []          # last good answer
        self.cpu_counters = {}     # host -> {(cpu, mode): seconds}
        self.inst_cpu_ns = {}      # instance uuid -> ns
        self.absent_pushed = set()
        self.last = time.time()
        self.http = requests.Session()

    def fetch(self):
        # keystoneauth re-authenticates by itself when the token expires; a
        # failing connection is replaced (its token may carry a catalog from
        # before the services were registered), but at most every 10 s, as
        # each new connection costs a password check in Keystone
        if self.conn is None:
            self.conn, self.connected_at = connect(), time.time()
        try:
            self.servers = list_servers(self.conn)
            return True
        except Exception as e:
            LOG.warning('could not list servers (keeping the last answer): %s',
                        str(e)[:200])
            if time.time() - self.connected_at > 10:
                self.conn = None
            return False

    def cycle(self):
        now = time.time()
        dt = max(0.0, now - self.last)
        self.last = now
        self.fetch()
        over = read_overrides()
        hosts = ['compute%d' % i for i in range(1, NCOMPUTE + 1)]
        cpu = {h: 0.0 for h in hosts}
        mem = {h: 0.0 for h in hosts}
        running = []
        for s in self.servers:
            h = s.get('OS-EXT-SRV-ATTR:host')
            if not h or s.get('OS-EXT-STS:power_state') != RUNNING:
                continue
            md = s.get('metadata') or {}
            fl = s.get('flavor') or {}
            vcpus = int(fl.get('vcpus') or 1)
            ram = int(fl.get('ram') or 0)
            c, m = frac(md, 'leveller-test:cpu', DEFAULT_CPU), frac(
                md, 'leveller-test:memory', DEFAULT_MEMORY)
            if h not in cpu:
                cpu[h] = mem[h] = 0.0
                hosts.append(h)
            cpu[h] += c * vcpus
            mem[h] += m * ram
            running.append((s, h, vcpus, ram, c, m))
        state = {'time': now, 'hosts': {}, 'instances': {}}
        for h in hosts:
            o = over.get(h, {})
            hc = clamp(BASE_CPU + cpu[h] / HOST_VCPUS)
            hm = clamp(BASE_MEMORY + mem[h] / HOST_MEMORY_MB)
            if 'cpu' in o:
                hc = clamp(float(o['cpu']))
            if 'memory' in o:
                hm = clamp(float(o['memory']))
            absent = bool(o.get('absent'))
            state['hosts'][h] = {'cpu': round(hc, 4), 'memory': round(hm, 4),
                                 'absent': absent}
            self.push_host(h, hc, hm, dt, absent)
        self.push_instances(running, dt, state)
        tmp = STATE + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(state, f, indent=1, sort_keys=True)
        os.replace(tmp, STATE)

    def push_host(self, host, c, m, dt, absent):
        url = '%s/metrics/job/node/instance/%s:9100' % (PUSHGATEWAY, host)
        if absent:
            if host not in self.absent_pushed:
                self.http.delete(url, timeout=5)
                self.absent_pushed.add(host)
                LOG.info('%s: series removed (absent)', host)
            return
        self.absent_pushed.discard(host)
        counters = self.cpu_counters.setdefault(host, {})
        share = {'idle': 1.0 - c, 'user': c * 0.8, 'system': c * 0.2}
        lines = ['# TYPE node_cpu_seconds_total counter']
        for cpu in range(HOST_VCPUS):
            for mode, f in share.items():
                k = (cpu, mode)
                counters[k] = counters.get(k, 0.0) + dt * f
                lines.append('node_cpu_seconds_total%s %.6f' % (
                    labels({'cpu': str(cpu), 'mode': mode}), counters[k]))
        total = HOST_MEMORY_MB * 1024 * 1024
        lines += ['# TYPE node_memory_MemTotal_bytes gauge',
                  'node_memory_MemTotal_bytes %d' % total,
                  '# TYPE node_memory_MemAvailable_bytes gauge',
                  'node_memory_MemAvailable_bytes %d' % int(total * (1 - m))]
        r = self.http.put(url, data='\n'.join(lines) + '\n', timeout=5)
        r.raise_for_status()

    def push_instances(self, running, dt, state):
        lines = ['# TYPE ceilometer_cpu counter',
                 '# TYPE ceilometer_memory_usage gauge']
        seen = set()
        for s, h, vcpus, ram, c, m in running:
            uid = s['id']
            seen.add(uid)
            ns = self.inst_cpu_ns.get(uid, 0.0) + dt * 1e9 * c * vcpus
            self.inst_cpu_ns[uid] = ns
            lab = {'resource': uid, 'resource_name': s.get('name', ''),
                   'project': s.get('tenant_id', ''),
                   'user': s.get('user_id', ''), 'vm_instance': h,
                   'type': 'instance', 'publisher': 'leveller-feeder'}
            lines.append('ceilometer_cpu%s %d' % (labels(lab), ns))
            lines.append('ceilometer_memory_usage%s %.1f' % (labels(lab), m * ram))
            state['instances'][uid] = {'host': h, 'cpu': c, 'memory': m,
                                       'vcpus': vcpus, 'ram': ram}
        for uid in list(self.inst_cpu_ns):
            if uid not in seen:
                del self.inst_cpu_ns[uid]
        r = self.http.put('%s/metrics/job/ceilometer' % PUSHGATEWAY,
                          data='\n'.join(lines) + '\n', timeout=5)
        r.raise_for_status()


def main():
    f = Feeder()
    LOG.info('feeding %s every %.1f s for compute1..%d', PUSHGATEWAY, INTERVAL,
             NCOMPUTE)
    while True:
        t0 = time.time()
        try:
            f.cycle()
        except Exception as e:
            LOG.warning('cycle failed: %s', str(e)[:300])
        time.sleep(max(0.1, INTERVAL - (time.time() - t0)))


if __name__ == '__main__':
    main()
