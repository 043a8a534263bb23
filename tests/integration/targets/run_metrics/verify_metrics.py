"""Reads the local cloud's Prometheus and Pushgateway over HTTP for the run_metrics target.

    verify_metrics.py wait PROM QUERY [VALUE]      until QUERY returns one series (equal to VALUE if
                                                   given, within 30 s); prints its value
    verify_metrics.py group PUSH LABELS_JSON       the group's samples (name{labels} value per line,
                                                   push_time_seconds included), nothing if absent
    verify_metrics.py textfile FILE RUNS           the file is 0644 and holds RUNS runs in all
    verify_metrics.py delete PUSH JOB NAME=VALUE.. delete the Pushgateway group
"""
import json
import os
import stat
import sys
import time
import urllib.parse
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode('utf-8'))


def check(cond, msg):
    if not cond:
        sys.exit('FAIL: ' + msg)
    print('ok: ' + msg)


def wait(prom, query, expected=None, timeout=30):
    url = prom.rstrip('/') + '/api/v1/query?' + urllib.parse.urlencode({'query': query})
    deadline, seen = time.monotonic() + timeout, None
    while True:
        result = get(url)['data']['result']
        seen = [r['value'][1] for r in result]
        if len(seen) == 1 and (expected is None or float(seen[0]) == float(expected)):
            print(seen[0])
            return
        if time.monotonic() > deadline:
            sys.exit('FAIL: %s gave %s after %d s, expected one series%s'
                     % (query, seen, timeout, '' if expected is None else ' equal to %s' % expected))
        time.sleep(1)


def group(push, labels):
    wanted = json.loads(labels)
    for entry in get(push.rstrip('/') + '/api/v1/metrics')['data']:
        if entry['labels'] != wanted:
            continue
        lines = []
        for name, family in sorted(entry.items()):
            if isinstance(family, dict) and 'metrics' in family:
                for metric in family['metrics']:
                    value = metric.get('value', metric.get('count'))
                    lines.append('%s%s %s' % (name, json.dumps(metric['labels'], sort_keys=True), value))
        print('\n'.join(lines))


def textfile(path, runs):
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    check(stat.S_ISREG(os.lstat(path).st_mode) and mode == 0o644, '%s is a regular file, mode %o' % (path, mode))
    total = 0.0
    with open(path) as handle:
        for line in handle:
            if line.startswith('cloudops_leveller_runs_total{'):
                total += float(line.rsplit(' ', 1)[1])
    check(total == float(runs), '%s counts %g run(s), expected %s' % (path, total, runs))
    left = [n for n in os.listdir(os.path.dirname(path)) if n != os.path.basename(path)]
    check(not left, 'no temporary file left beside it (%s)' % left)


def delete(push, job, pairs):
    path = '/metrics/job/' + urllib.parse.quote(job, safe='')
    for pair in pairs:
        name, value = pair.split('=', 1)
        path += '/%s/%s' % (name, urllib.parse.quote(value, safe=''))
    req = urllib.request.Request(push.rstrip('/') + path, method='DELETE')
    with urllib.request.urlopen(req, timeout=10) as resp:
        check(resp.status in (200, 202), 'deleted the Pushgateway group %s' % path)


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'wait':
        wait(*args)
    elif cmd == 'group':
        group(*args)
    elif cmd == 'textfile':
        textfile(*args)
    elif cmd == 'delete':
        delete(args[0], args[1], args[2:])
    else:
        sys.exit(__doc__)
