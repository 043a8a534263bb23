"""The live progress test's reads of the local cloud, its timed playbook run and its checks.

    live_progress.py before FILE                  the cloud now, the host to drain and its other
                                                  instances (put back afterwards), to FILE; prints the host
    live_progress.py state FILE                   servers and compute services to FILE
    live_progress.py booted FILE HOST COUNT       lp-1..COUNT on HOST, ACTIVE, one copy each
    live_progress.py run LINES -- COMMAND...      COMMAND in a terminal (as in a shell or under AWX's
                                                  runner); each output line with the monotonic time it
                                                  arrived, echoed and written to LINES (JSON); exits as COMMAND
    live_progress.py streamed LINES RESULT HOST   each move had its own line, as it finished, before the
                                                  task's result line
    live_progress.py drained BEFORE AFTER HOST    HOST empty and disabled; every instance ACTIVE, once
    live_progress.py final BEFORE AFTER HOST      the cloud as found: the same instances, ACTIVE, one copy
                                                  each, on the hosts they were on; no lp-* left; HOST enabled
    live_progress.py put_back FILE                the ids to move back to the host, as JSON for -e @
"""
import errno
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import openstack

PREFIX = 'lp-'
DRAIN_TASK = 'TASK [Disable the host and carry out the drain]'
PROGRESS_TASK = 'TASK [Progress, one line per finished move]'
RESULT = re.compile(r'^(ok|changed|failed|fatal): \[localhost\]')
MOVE = re.compile(r'^localhost \| \S+Z \[(\d+)/(\d+)\] wave (\d+) (live|cold|evacuate) (.+?) \(([0-9a-f-]{36})\) '
                  r'(\S+) -> (\S+): (\w+)')
WAVE = re.compile(r'^localhost \| \S+Z wave (\d+)/(\d+): (\d+) move\(s\)$')
# Moves of the local cloud take ~5 s each, and a drain has one move per wave (max_per_host 1 on the
# drained host): the lines of 10 moves come ~45 s apart from first to last. In one burst they
# would come within a second.
MIN_SPREAD = 5.0
MIN_GAPS = 3
RUN_LIMIT = 1800


def conn():
    return openstack.connect()


def state():
    c = conn()
    servers = [dict(id=s.id, name=s.name, host=s.compute_host, status=s.status)
               for s in c.compute.servers(details=True, all_projects=True)]
    resp = c.compute.get('/os-services?binary=nova-compute', microversion='2.53')
    services = dict((s['host'], s) for s in resp.json()['services'])
    return dict(servers=servers, services=services)


def load(path):
    with open(path) as f:
        return json.load(f)


def dump(path, data):
    with open(path, 'w') as f:
        json.dump(data, f, indent=1)


def check(cond, msg):
    if not cond:
        sys.exit('FAIL: ' + msg)
    print('ok: ' + msg)


def ours(snap):
    return [s for s in snap['servers'] if s['name'].startswith(PREFIX)]


def pick(snap):
    """The enabled, up host with the fewest instances, all ACTIVE (each is moved away and back)."""
    usable = sorted(h for h, svc in snap['services'].items()
                    if svc['status'] == 'enabled' and svc['state'] == 'up' and not svc.get('forced_down'))
    check(len(usable) >= 2, 'at least two compute hosts are enabled and up (%s)' % ', '.join(usable))
    count = dict((h, 0) for h in usable)
    idle = set()  # a drain leaves a shut-off instance where it is: the host would not end empty
    for s in snap['servers']:
        if s['host'] in count:
            count[s['host']] += 1
            if s['status'] != 'ACTIVE':
                idle.add(s['host'])
    return sorted(usable, key=lambda h: (h in idle, count[h], h))[0]


def once_each_active(servers, what, before=None):
    """One copy of each instance; ours ACTIVE, and every one that was ACTIVE before still is."""
    ids = [s['id'] for s in servers]
    names = [s['name'] for s in servers if s['name'].startswith(PREFIX)]
    check(len(ids) == len(set(ids)) and len(names) == len(set(names)),
          '%s: %d instance(s), one copy each' % (what, len(ids)))
    was_active = set(s['id'] for s in (before or {}).get('servers', []) if s['status'] == 'ACTIVE')
    bad = ['%s (%s)' % (s['name'], s['status']) for s in servers
           if s['status'] != 'ACTIVE' and (s['name'].startswith(PREFIX) or s['id'] in was_active)]
    check(not bad, '%s: every instance is ACTIVE (not: %s)' % (what, ', '.join(bad)))


def run(lines_file, cmd):
    """Run ``cmd`` with a terminal as its stdout and stderr; time each line as it arrives."""
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    env.pop('PYTHONUNBUFFERED', None)  # the job output must not need it
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    t0 = time.monotonic()
    lines, pending = [], b''
    try:
        while True:
            left = t0 + RUN_LIMIT - time.monotonic()
            if left <= 0:
                proc.kill()
                sys.exit('FAIL: %s did not end within %d s' % (' '.join(cmd), RUN_LIMIT))
            ready, _w, _x = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: the command closed the terminal
                if exc.errno != errno.EIO:
                    raise
                chunk = b''
            now = time.monotonic() - t0
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b'\n')
            for raw in complete:
                text = raw.decode('utf-8', 'replace').rstrip('\r')
                lines.append([round(now, 3), text])
                print('%8.2f %s' % (now, text), flush=True)
    finally:
        os.close(master)
    if pending:
        lines.append([round(time.monotonic() - t0, 3), pending.decode('utf-8', 'replace').rstrip('\r')])
    rc = proc.wait()
    dump(lines_file, lines)
    return rc


def first(lines, pred, start=0):
    for i in range(start, len(lines)):
        if pred(lines[i][1]):
            return i
    return None


def streamed(lines, result, host):
    banner = first(lines, lambda t: t.startswith(DRAIN_TASK))
    check(banner is not None, 'the drain task ran (%s)' % DRAIN_TASK)
    end = first(lines, RESULT.match, banner)
    check(end is not None, "the drain task's result line: %s" % (lines[end][1] if end else None))
    moved = [m for m in result['moves'] if m['result'] == 'moved']
    check(len(moved) == len(result['moves']) and result['totals']['failed'] == 0,
          'every move of the drain moved (%s)' % result.get('msg'))
    check(result.get('progress_streamed') is True, 'the result says progress_streamed: true')
    move_lines = [(i, lines[i][0], MOVE.match(lines[i][1])) for i in range(banner, end) if MOVE.match(lines[i][1])]
    by_id = {}
    for i, t, m in move_lines:
        by_id.setdefault(m.group(6), []).append((i, t, m))
    for mv in moved:
        got = by_id.get(mv['instance'], [])
        check(len(got) == 1 and got[0][2].group(9) == 'moved' and got[0][2].group(7) == host,
              '%s (%s) has its own line, %s -> %s: moved, before the result line'
              % (mv['name'], mv['instance'], host, mv['host_after']))
    check(len(move_lines) == len(moved), '%d move lines for %d moves' % (len(move_lines), len(moved)))
    times = [t for _i, t, _m in move_lines]
    spread = times[-1] - times[0]
    gaps = sum(1 for a, b in zip(times, times[1:]) if b - a > 1.0)
    before_result = lines[end][0] - times[0]
    check(spread >= MIN_SPREAD, 'the move lines came over %.1f s (first to last), not in one burst' % spread)
    check(gaps >= MIN_GAPS, '%d of the %d gaps between move lines are longer than 1 s' % (gaps, len(times) - 1))
    check(before_result >= MIN_SPREAD, 'the first move line came %.1f s before the task result line %r'
          % (before_result, lines[end][1]))
    waves = dict((int(m.group(1)), (i, int(m.group(3)))) for i in range(banner, end)
                 for m in [WAVE.match(lines[i][1])] if m)
    for wave in sorted(set(int(m.group(3)) for _i, _t, m in move_lines)):
        lines_of_wave = [i for i, _t, m in move_lines if int(m.group(3)) == wave]
        check(wave in waves and waves[wave][0] < lines_of_wave[0] and waves[wave][1] == len(lines_of_wave),
              'wave %d: its line (%d move(s)) came before its moves' % (wave, len(lines_of_wave)))
    check(first(lines, lambda t: ' end: %d move(s)' % len(moved) in t, banner) < end, 'the end line was streamed')
    skip = first(lines, lambda t: t.startswith(PROGRESS_TASK), end)
    shown = first(lines, lambda t: t.strip() != '', skip + 1) if skip is not None else None
    check(shown is not None and lines[shown][1].startswith('skipping: [localhost]'),
          'the end-of-run "Progress" task prints nothing again (the lines were streamed)')
    print('live_progress: %d move lines over %.1f s from first to last, the first %.1f s after the drain '
          'task started and %.1f s before its result line; %d wave lines'
          % (len(times), spread, times[0] - lines[banner][0], before_result, len(waves)))


def main(argv):
    cmd = argv[0]
    if cmd == 'before':
        snap = state()
        # lp-* left by an interrupted earlier run are deleted before the boot: not the cloud as found
        snap['servers'] = [s for s in snap['servers'] if not s['name'].startswith(PREFIX)]
        host = pick(snap)
        snap['host'] = host
        snap['put_back'] = [s['id'] for s in snap['servers'] if s['host'] == host]
        dump(argv[1], snap)
        print(host)
    elif cmd == 'state':
        dump(argv[1], state())
    elif cmd == 'put_back':
        print(json.dumps({'put_back': load(argv[1])['put_back']}))
    elif cmd == 'booted':
        snap, host, count = load(argv[1]), argv[2], int(argv[3])
        mine = ours(snap)
        once_each_active(mine, 'booted')
        check(len(mine) == count and all(s['host'] == host for s in mine), '%d lp-* instances on %s' % (count, host))
    elif cmd == 'run':
        sys.exit(run(argv[1], argv[argv.index('--') + 1:]))
    elif cmd == 'streamed':
        streamed(load(argv[1]), load(argv[2]), argv[3])
    elif cmd == 'drained':
        before, after, host = load(argv[1]), load(argv[2]), argv[3]
        once_each_active(after['servers'], 'after the drain', before)
        check(set(s['id'] for s in before['servers']) <= set(s['id'] for s in after['servers']),
              'every instance there before the test is still there')
        left = [s['name'] for s in after['servers'] if s['host'] == host]
        check(not left, '%s holds no instance (left: %s)' % (host, ', '.join(left)))
        check(after['services'][host]['status'] == 'disabled', '%s is disabled' % host)
    elif cmd == 'final':
        before, after, host = load(argv[1]), load(argv[2]), argv[3]
        once_each_active(after['servers'], 'at the end', before)
        check(not ours(after), 'no lp-* instance is left')
        was = dict((s['id'], s['host']) for s in before['servers'])
        now = dict((s['id'], s['host']) for s in after['servers'])
        check(sorted(was) == sorted(now), 'the same %d instances as before the test' % len(was))
        moved = ['%s: %s, was %s' % (i, now[i], was[i]) for i in was if now.get(i) != was[i]]
        check(not moved, 'each instance is on the host it was on before the test (not: %s)' % '; '.join(moved))
        check(after['services'][host]['status'] == 'enabled', '%s is enabled again' % host)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
