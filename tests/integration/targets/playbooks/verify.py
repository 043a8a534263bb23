"""Reads the local cloud through the real Nova API and checks what each playbook promised.

    verify.py state FILE                      write servers and compute services to FILE
    verify.py same A B                        nothing moved between A and B
    verify.py balanced A B RESULT             instances level out; each move landed where reported
    verify.py drained A B HOST                HOST empty and disabled; every instance kept, ACTIVE
    verify.py enabled A HOST                  HOST's compute service enabled
    verify.py consolidated A B PLAN           the plan's freed hosts are empty; instances kept
    verify.py recovered A B HOST              HOST's instances rebuilt elsewhere, ACTIVE, count kept
    verify.py fence HOST true|false           set forced_down (false: retried until Nova accepts)
    verify.py bmcs BMC_FILE                   leveller_bmcs (recover.yml) for the local BMCs, as JSON
    verify.py wait HOST silent|reporting      until HOST's last report is older than 25 s / is new
    verify.py fenced RESULT                   recover.yml's result: fenced through the BMC (verified)
    verify.py busiest A                       the host with the most test instances in A
    verify.py home A B HOST                   the test instances on HOST in A are there again in B, ACTIVE,
                                              and none of them still records a leveller:home
    verify.py out A HOST                      HOST is still disabled and forced down in A
    verify.py one_on A HOST                   the name of one test instance on HOST in A
    verify.py fault NAME VALUE|clear          arm (or clear) the fake driver's leveller-test:fault on NAME
    verify.py report PREFIX NAME              PREFIX-report.txt names NAME as not done; PREFIX-measured.json
                                              holds a measured after
    verify.py cleanup                         delete pb-* servers, enable and un-force all computes
"""
import calendar
import json
import sys
import time

import openstack

PREFIX = 'pb-'


def conn():
    return openstack.connect()


def state():
    c = conn()
    servers = [dict(id=s.id, name=s.name, host=s.compute_host, status=s.status, metadata=dict(s.metadata or {}))
               for s in c.compute.servers(details=True, all_projects=True)]
    resp = c.compute.get('/os-services?binary=nova-compute', microversion='2.53')
    services = dict((s['host'], s) for s in resp.json()['services'])
    return dict(servers=servers, services=services)


def load(path):
    with open(path) as f:
        return json.load(f)


def ours(snap):
    return dict((s['id'], s) for s in snap['servers'] if s['name'].startswith(PREFIX))


def check(cond, msg):
    if not cond:
        sys.exit('FAIL: ' + msg)
    print('ok: ' + msg)


def per_host(servers):
    counts = {}
    for s in servers.values():
        counts[s['host']] = counts.get(s['host'], 0) + 1
    return counts


def all_kept_active(a, b):
    check(sorted(ours(a)) == sorted(ours(b)), 'the same %d test instances exist, each exactly once' % len(ours(a)))
    bad = [s['name'] for s in ours(b).values() if s['status'] != 'ACTIVE']
    check(not bad, 'every test instance is ACTIVE (not: %s)' % ', '.join(bad))


def main(argv):
    cmd = argv[0]
    if cmd == 'state':
        with open(argv[1], 'w') as f:
            json.dump(state(), f)
    elif cmd == 'same':
        a, b = load(argv[1]), load(argv[2])
        check(dict((k, v['host']) for k, v in ours(a).items()) == dict((k, v['host']) for k, v in ours(b).items()),
              'check mode moved nothing')
    elif cmd == 'balanced':
        a, b, result = load(argv[1]), load(argv[2]), load(argv[3])
        all_kept_active(a, b)
        moved = [m for m in result.get('moves', []) if m.get('result') == 'moved']
        check(len(moved) > 0, 'balance moved %d instance(s)' % len(moved))
        check(result.get('totals', {}).get('failed', 0) == 0, 'no move failed')
        for m in moved:
            check(ours(b)[m['instance']]['host'] == m['destination'],
                  '%s is on %s, as the result says' % (m.get('name'), m['destination']))
        before, after = per_host(ours(a)), per_host(ours(b))
        check(max(after.values()) < max(before.values()),
              'the most crowded host went from %d to %d test instances' % (max(before.values()), max(after.values())))
    elif cmd == 'drained':
        a, b, host = load(argv[1]), load(argv[2]), argv[3]
        all_kept_active(a, b)
        left = [s['name'] for s in b['servers'] if s['host'] == host]
        check(not left, '%s holds no instance (left: %s)' % (host, ', '.join(left)))
        check(b['services'][host]['status'] == 'disabled', '%s is disabled (%s)' % (host, b['services'][host].get('disabled_reason')))
    elif cmd == 'enabled':
        a, host = load(argv[1]), argv[2]
        check(a['services'][host]['status'] == 'enabled', '%s is enabled' % host)
    elif cmd == 'out':
        a, host = load(argv[1]), argv[2]
        svc = a['services'][host]
        check(svc['status'] == 'disabled' and svc['forced_down'], '%s is still disabled and forced down' % host)
    elif cmd == 'consolidated':
        a, b, plan = load(argv[1]), load(argv[2]), load(argv[3])
        all_kept_active(a, b)
        freed = plan.get('freed_hosts') or []
        check(len(freed) >= 1, 'the plan frees %s' % (', '.join(freed) or 'nothing'))
        for host in freed:
            left = [s['name'] for s in b['servers'] if s['host'] == host]
            check(not left, '%s ended empty (left: %s)' % (host, ', '.join(left)))
        check(len([h for h, n in per_host(ours(b)).items() if n]) < len([h for h, n in per_host(ours(a)).items() if n]),
              'test instances use fewer hosts')
    elif cmd == 'recovered':
        a, b, host = load(argv[1]), load(argv[2]), argv[3]
        was_there = [k for k, s in ours(a).items() if s['host'] == host]
        all_kept_active(a, b)
        moved = [k for k in was_there if ours(b)[k]['host'] != host]
        check(len(moved) == len(was_there), '%d instance(s) of %s rebuilt on other hosts' % (len(moved), host))
    elif cmd == 'fence':
        host, forced = argv[1], argv[2] == 'true'
        c = conn()
        svc = [s for s in c.compute.services(binary='nova-compute') if s.host == host][0]
        deadline = time.time() + 120
        while True:
            resp = c.compute.put('/os-services/%s' % svc.id, json={'forced_down': forced}, microversion='2.53')
            if resp.status_code < 400 or time.time() > deadline:
                break
            time.sleep(3)  # un-forcing waits for the restarted compute to clean up its evacuations
        check(resp.status_code < 400, 'forced_down=%s on %s (HTTP %s)' % (forced, host, resp.status_code))
        if not forced:
            t0 = time.time()
            while time.time() - t0 < 60:
                if [s for s in c.compute.services(binary='nova-compute') if s.host == host and s.state == 'up']:
                    break
                time.sleep(2)
    elif cmd == 'bmcs':
        bmc = load(argv[1])
        print(json.dumps({'leveller_bmcs': dict(
            (host, {'driver': 'redfish', 'address': bmc['redfish']['url'], 'username': bmc['username'],
                    'password': bmc['password'], 'system_id': host, 'verify': False, 'fence_timeout': 30})
            for host in sorted(bmc['redfish']['systems']))}))
    elif cmd == 'wait':
        host, what = argv[1], argv[2]
        c = conn()
        since = time.time()
        deadline = since + 150
        while True:
            resp = c.compute.get('/os-services?binary=nova-compute', microversion='2.53')
            svc = [s for s in resp.json()['services'] if s['host'] == host][0]
            age = time.time() - calendar.timegm(time.strptime(svc['updated_at'][:19], '%Y-%m-%dT%H:%M:%S'))
            if (what == 'silent' and svc['state'] == 'down' and age > 25) or (what == 'reporting' and age < time.time() - since):
                break
            check(time.time() < deadline, '%s %s within 150 s (state %s, last report %.0f s ago)' % (host, what, svc['state'], age))
            time.sleep(2)
    elif cmd == 'fenced':
        result = load(argv[1])
        check(result.get('fencing') == 'verified', 'fenced through the BMC: %s' % result.get('fencing'))
        steps = [(st['step'], st['result']) for st in result.get('steps', [])]
        check(('power_confirm', 'ok') in steps and ('forced_down', 'done') in steps, 'steps %s' % steps)
    elif cmd == 'home':
        a, b, host = load(argv[1]), load(argv[2]), argv[3]
        all_kept_active(a, b)
        was_there = [k for k, s in ours(a).items() if s['host'] == host]
        check(len(was_there) > 0, '%d test instance(s) lived on %s' % (len(was_there), host))
        away = [ours(b)[k]['name'] + ' on ' + str(ours(b)[k]['host']) for k in was_there if ours(b)[k]['host'] != host]
        check(not away, 'every one of them is back on %s (away: %s)' % (host, ', '.join(away)))
        recorded = [ours(b)[k]['name'] for k in was_there if 'leveller:home' in ours(b)[k].get('metadata', {})]
        check(not recorded, 'none of them still records leveller:home (%s)' % ', '.join(recorded))
    elif cmd == 'one_on':
        a, host = load(argv[1]), argv[2]
        print(sorted(s['name'] for s in ours(a).values() if s['host'] == host)[0])
    elif cmd == 'fault':
        name, value = argv[1], argv[2]
        c = conn()
        server = [s for s in c.compute.servers(all_projects=True) if s.name == name][0]
        if value == 'clear':
            c.compute.delete_server_metadata(server, ['leveller-test:fault'])
        else:
            c.compute.set_server_metadata(server, **{'leveller-test:fault': value})
        print('ok: %s leveller-test:fault %s' % (name, value))
    elif cmd == 'report':
        prefix, name = argv[1], argv[2]
        with open(prefix + '-report.txt') as f:
            text = f.read()
        check('not done: %s ' % name in text, 'the report of the failed run names %s as not done' % name)
        measured = load(prefix + '-measured.json')
        check(bool(measured.get('hosts')) and 'measured at' in text,
              'the report holds the after as measured (%d hosts)' % len(measured.get('hosts') or {}))
    elif cmd == 'busiest':
        counts = per_host(ours(load(argv[1])))
        print(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0])
    elif cmd == 'cleanup':
        c = conn()
        for s in c.compute.servers(all_projects=True):
            if s.name.startswith(PREFIX):
                c.compute.delete_server(s.id)
        for s in c.compute.services(binary='nova-compute'):
            if s.status != 'enabled':
                c.compute.enable_service(s)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
