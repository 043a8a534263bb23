"""Carry out moves with the real executor over the libvirt backend, on the plain-libvirt test bed.

Runs ``Executor(LibvirtBackend(uris), ...)`` (plugins/module_utils/_execute.py over
_libvirt_backend.py) against the two QEMU hosts of libvirt.sh, and checks each outcome on the
real hosts with connections of its own:

  a  two moves in one wave, max_parallel 2: lv-a and lv-b lvhost1 -> lvhost2, both in flight at
     once, both moved; each runs on lvhost2 with its UUID, persistent, and is gone from lvhost1;
  b  lv-c capped at 1 MiB/s with a 3 s deadline: aborted (abortJob), lv-c still running on
     lvhost1 only;
  c  lv-c to lvhost2, which already defines lv-c's UUID: failed before any migration starts
     (no migration record, no job), lv-c still on lvhost1, the definition on lvhost2 untouched;
  d  lv-a lvhost1 -> lvhost2 with a run journal: the records (run, intent, answer, end, closed)
     and nothing left to resume; then a copy of the journal cut after the start call is resumed
     by a fresh backend: the move is adopted (found begun), never started again, and moved.

After each case every guest runs exactly once, on the host the case expects. libvirt.sh reset
runs before, between and after the cases. Prints a table (case, result, seconds) and the
measured migration and abort times. Run with the tools venv (it has libvirt-python):

    ~/.cache/cloudops-leveller/venv/bin/python tests/integration/libvirt/backend_check.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import libvirt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
LIBVIRT_SH = os.path.join(HERE, 'libvirt.sh')
DEFAULT_URIS = {'lvhost1': 'qemu+tcp://10.213.77.11/system',
                'lvhost2': 'qemu+tcp://10.213.77.12/system'}
DEFAULT_HOMES = {'lv-a': 'lvhost1', 'lv-b': 'lvhost1', 'lv-c': 'lvhost1', 'lv-d': 'lvhost2'}


def import_collection():
    """The collection of this checkout, importable as ansible_collections.cloudops.leveller."""
    tree = tempfile.mkdtemp(prefix='leveller-backend-check-')
    os.makedirs(os.path.join(tree, 'ansible_collections', 'cloudops'))
    os.symlink(ROOT, os.path.join(tree, 'ansible_collections', 'cloudops', 'leveller'))
    sys.path.insert(0, tree)
    return tree


TREE = import_collection()
# pylint: disable=wrong-import-position
from ansible_collections.cloudops.leveller.plugins.module_utils import _journal  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import (  # noqa: E402
    Executor, Move, moves_from_journal)
from ansible_collections.cloudops.leveller.plugins.module_utils._libvirt_backend import LibvirtBackend  # noqa: E402

URIS = json.loads(os.environ.get('LEVELLER_LIBVIRT_URIS') or 'null') or DEFAULT_URIS
HOMES = json.loads(os.environ.get('LEVELLER_LIBVIRT_HOMES') or 'null') or DEFAULT_HOMES
# The bed's hosts share this machine's CPUs (two in CI): with the default ratio 1.0 lvhost2 has
# room for one more 1-vCPU guest. 4 vCPUs per CPU, as the module examples use.
RATIO = {'vcpus': 4.0, 'memory_mb': 1.0}
failures = []
rows = []
times = []


def check(ok, what):
    """Print one check line and remember a failure."""
    print('  %s %s' % ('ok  ' if ok else 'FAIL', what))
    if not ok:
        failures.append(what)
    return ok


def silence(ctx, err):
    """libvirt prints every error on stderr by default; the checks report them."""


def reset():
    out = subprocess.run(['bash', LIBVIRT_SH, 'reset'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=600, check=False)
    for line in out.stdout.splitlines():
        print('  %s' % line)
    if out.returncode != 0:
        raise SystemExit('libvirt.sh reset failed (exit %d): is the test bed up (libvirt.sh up)?' % out.returncode)


def copies(conns):
    """Guest name -> [(host, state, persistent, uuid)] over every domain of every host."""
    found = {}
    for host, conn in sorted(conns.items()):
        for dom in conn.listAllDomains(0):
            found.setdefault(dom.name(), []).append((host, dom.state()[0], bool(dom.isPersistent()), dom.UUIDString()))
    return found


def everyone_once(conns, uuids, expected, what):
    """Every guest runs exactly once, persistent, on its expected host, with its UUID; nothing else is defined."""
    found = copies(conns)
    for guest, host in sorted(expected.items()):
        seen = found.get(guest, [])
        text = ', '.join('%s state %d%s' % (h, s, '' if p else ' transient') for h, s, p, _u in seen)
        check(seen == [(host, libvirt.VIR_DOMAIN_RUNNING, True, uuids[guest])],
              '%s: %s runs once, on %s, persistent, UUID %s (seen: %s)' % (
                  what, guest, host, uuids[guest], text or 'nowhere'))
    extra = sorted(set(found) - set(expected))
    check(not extra, '%s: no other domain on the hosts (%s)' % (what, ', '.join(extra) or 'none'))


def timed_backend(backend):
    """Note when the executor calls start and abort (monotonic), per instance."""
    calls = {'start': {}, 'abort': {}}
    start, abort = backend.start, backend.abort

    def timed_start(kind, instance, destination):
        calls['start'][instance] = time.monotonic()
        return start(kind, instance, destination)

    def timed_abort(instance, migration_id):
        calls['abort'].setdefault(instance, time.monotonic())
        return abort(instance, migration_id)
    backend.start, backend.abort = timed_start, timed_abort
    return calls


def executor(backend, **kwargs):
    kwargs.setdefault('timeout', 120)
    kwargs.setdefault('abort_timeout', 30)
    kwargs.setdefault('poll_interval', 0.25)
    kwargs.setdefault('on_failure', 'continue')
    return Executor(backend, progress=lambda line: print('  | %s' % line), **kwargs)


def case(label, title, body):
    print('%s: %s' % (label, title))
    t0 = time.monotonic()
    try:
        result = body()
    except Exception as exc:  # a case that breaks is a failed case; the others still run
        check(False, '%s raised %s: %s' % (label, type(exc).__name__, exc))
        result = 'error'
    rows.append((label, title, result, time.monotonic() - t0))
    reset()


def case_a(conns, uuids):
    backend = LibvirtBackend(URIS, allocation_ratio=RATIO)
    calls = timed_backend(backend)
    ex = executor(backend, max_parallel=2, max_per_host=2)
    moves = ex.run([Move(uuids['lv-a'], 'lvhost1', 'lvhost2', name='lv-a'),
                    Move(uuids['lv-b'], 'lvhost1', 'lvhost2', name='lv-b')])
    for move in moves:
        check(move.result == 'moved', '%s moved (%s%s)' % (move.name, move.result, ': %s' % move.error if move.error else ''))
        check(move.host_after == 'lvhost2' and move.status_after == 'ACTIVE',
              '%s post-check: ACTIVE on lvhost2 (%s on %s)' % (move.name, move.status_after, move.host_after))
        rec = backend.migrations(move.instance, 'live')
        check([r['status'] for r in rec] == ['completed'], '%s: one migration record, completed (%s)'
              % (move.name, [(r['id'], r['status']) for r in rec]))
        if rec:
            times.append(('migration %s lvhost1 -> lvhost2 (libvirt call)' % move.name, rec[0]['seconds']))
            times.append(('move %s start -> verified (executor)' % move.name, move.seconds))
    if all(m.instance in calls['start'] and backend.migrations(m.instance, 'live') for m in moves):
        first, second = sorted(moves, key=lambda m: calls['start'][m.instance])
        took = backend.migrations(first.instance, 'live')[0]['seconds'] or 0
        after = calls['start'][second.instance] - calls['start'][first.instance]
        check(after < took, 'both in flight at once: %s started %.2f s after %s, whose migration took %.2f s'
              % (second.name, after, first.name, took))
    else:
        check(False, 'both in flight at once: not both started')
    everyone_once(conns, uuids, dict(HOMES, **{'lv-a': 'lvhost2', 'lv-b': 'lvhost2'}), 'after a')
    backend.close()
    return ' '.join(sorted(set(m.result for m in moves)))


def case_b(conns, uuids):
    backend = LibvirtBackend(URIS, allocation_ratio=RATIO, bandwidth=1)
    calls = timed_backend(backend)
    ex = executor(backend, timeout=3)
    move = ex.run([Move(uuids['lv-c'], 'lvhost1', 'lvhost2', name='lv-c')])[0]
    check(move.result == 'aborted', 'lv-c aborted (%s: %s)' % (move.result, move.error))
    rec = backend.migrations(uuids['lv-c'], 'live')
    check([r['status'] for r in rec] == ['cancelled'], 'one migration record, cancelled (%s)'
          % [(r['id'], r['status'], r['message']) for r in rec])
    if rec and uuids['lv-c'] in calls['abort']:
        started = calls['start'][uuids['lv-c']]
        aborted_after = calls['abort'][uuids['lv-c']] - started
        ended_after = rec[0]['seconds']
        times.append(('capped lv-c: abort asked after (deadline 3 s)', aborted_after))
        times.append(('capped lv-c: abortJob until the call returned', ended_after - aborted_after))
        times.append(('capped lv-c: start -> aborted verified (executor)', move.seconds))
        progress = rec[0].get('progress') or {}
        print('  job when last read: %.1f of %.1f MiB sent'
              % (progress.get('data_processed', 0) / 2.0 ** 20, progress.get('data_total', 0) / 2.0 ** 20))
    everyone_once(conns, uuids, HOMES, 'after b')
    backend.close()
    return move.result


def case_c(conns, uuids):
    src = conns['lvhost1'].lookupByUUIDString(uuids['lv-c'])
    stray = conns['lvhost2'].defineXML(src.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    try:
        check(stray.UUIDString() == uuids['lv-c'] and not stray.isActive(),
              'lvhost2 now defines lv-c\'s UUID (shut off)')
        backend = LibvirtBackend(URIS, allocation_ratio=RATIO)
        calls = timed_backend(backend)
        ex = executor(backend)
        move = ex.run([Move(uuids['lv-c'], 'lvhost1', 'lvhost2', name='lv-c')])[0]
        check(move.result in ('failed', 'skipped'), 'lv-c not moved: %s: %s' % (move.result, move.error))
        check('already has a domain with that UUID' in (move.error or ''), 'the reason names the clash')
        check(backend.migrations(uuids['lv-c'], 'live') == [], 'no migration record: nothing was started')
        check(conns['lvhost1'].lookupByUUIDString(uuids['lv-c']).jobStats().get('type') == libvirt.VIR_DOMAIN_JOB_NONE,
              'no job on lv-c on lvhost1')
        check(not conns['lvhost2'].lookupByUUIDString(uuids['lv-c']).isActive(),
              'the definition on lvhost2 is untouched (shut off)')
        check(uuids['lv-c'] in calls['start'], 'the executor asked and the backend refused at once')
        found = copies(conns).get('lv-c', [])
        states = sorted((h, s) for h, s, _p, _u in found)
        check(states == [('lvhost1', libvirt.VIR_DOMAIN_RUNNING), ('lvhost2', libvirt.VIR_DOMAIN_SHUTOFF)],
              'lv-c runs on lvhost1 only (seen: %s)' % found)
        backend.close()
    finally:
        stray.undefine()
    everyone_once(conns, uuids, HOMES, 'after c (stray definition removed)')
    return move.result


def case_d(conns, uuids):
    folder = tempfile.mkdtemp(prefix='leveller-journal-')
    try:
        backend = LibvirtBackend(URIS, allocation_ratio=RATIO)
        journal = _journal.Journal.create(folder, 'libvirt backend check')
        ex = executor(backend, journal=journal)
        moves = [Move(uuids['lv-a'], 'lvhost1', 'lvhost2', name='lv-a')]
        journal.begin('libvirt backend check', moves)
        ex.run(moves)
        journal.close(ex.totals(moves))
        backend.close()
        check(moves[0].result == 'moved', 'lv-a moved with a journal (%s: %s)' % (moves[0].result, moves[0].error))
        with open(journal.path) as f:
            lines = [json.loads(line) for line in f]
        events = [r['event'] for r in lines]
        check(events == ['run', 'intent', 'answer', 'end', 'closed'], 'journal events %s' % events)
        byname = dict((r['event'], r) for r in lines)
        check(byname['intent'].get('known_migrations') == [] and byname['intent'].get('destination') == 'lvhost2'
              and byname['intent'].get('status_before') == 'ACTIVE' and byname['intent'].get('power_before') == 1,
              'intent before the start: destination, ACTIVE, power 1, no earlier migrations')
        check(byname['answer'].get('answer') == 'accepted', 'answer: accepted')
        check(byname['end'].get('result') == 'moved' and byname['end'].get('host_after') == 'lvhost2'
              and byname['end'].get('migration_id') == 1, 'end: moved to lvhost2, migration 1 (%s)'
              % dict((k, byname['end'].get(k)) for k in ('result', 'host_after', 'migration_id')))
        recorded = _journal.read(journal.path)
        check(recorded.closed and not recorded.pending() and moves_from_journal(recorded) == [],
              'read back: closed, nothing pending, nothing to resume')

        # A run killed just after its start call: the same journal cut after the answer.
        cut = os.path.join(folder, 'cut.jsonl')
        with open(journal.path) as f, open(cut, 'w') as out:
            out.writelines(f.readlines()[:3])
        recorded = _journal.read(cut)
        pending = moves_from_journal(recorded)
        check(len(pending) == 1 and pending[0].begun_before, 'cut journal: one move begun before')
        fresh = LibvirtBackend(URIS, allocation_ratio=RATIO)
        calls = timed_backend(fresh)
        resumed = executor(fresh, journal=_journal.Journal(cut, recorded.run_id, resumed=True)).run(pending)[0]
        fresh.close()
        check(resumed.result == 'moved' and resumed.adopted and not calls['start'],
              'resumed by a fresh backend: adopted, not started again, moved (%s, %s)' % (resumed.result, resumed.note))
        everyone_once(conns, uuids, dict(HOMES, **{'lv-a': 'lvhost2'}), 'after d')
        return '%s; resumed: %s' % (moves[0].result, resumed.result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    libvirt.registerErrorHandler(silence, None)
    print('reset before')
    reset()
    conns = dict((h, libvirt.open(u)) for h, u in sorted(URIS.items()))
    uuids = {}
    for guest, host in sorted(HOMES.items()):
        uuids[guest] = conns[host].lookupByName(guest).UUIDString()
    print('guests: %s' % ', '.join('%s %s on %s' % (g, uuids[g], HOMES[g]) for g in sorted(HOMES)))
    case('a', 'two moves in one wave, max_parallel 2', lambda: case_a(conns, uuids))
    case('b', 'capped at 1 MiB/s, deadline 3 s', lambda: case_b(conns, uuids))
    case('c', 'destination already defines the UUID', lambda: case_c(conns, uuids))
    case('d', 'journal, then resume of a cut copy', lambda: case_d(conns, uuids))
    for conn in conns.values():
        conn.close()
    print()
    print('%-4s %-40s %-28s %8s' % ('case', 'what', 'result', 'seconds'))
    for label, title, result, seconds in rows:
        print('%-4s %-40s %-28s %8.1f' % (label, title, result, seconds))
    print()
    print('times:')
    for what, seconds in times:
        print('  %-52s %6.2f s' % (what, seconds or 0))
    shutil.rmtree(TREE, ignore_errors=True)
    if failures:
        print('%d check(s) failed:' % len(failures))
        for what in failures:
            print('  %s' % what)
        return 1
    print('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
