"""Check of the local cloud's BMCs (``cloud.sh bmc-check``), through the client libraries
a fencing step would use: sushy (Redfish) and pyghmi (IPMI).

1. fault modes, set with ``cloud.sh bmc-fault HOST MODE`` as a test does: computeN (compute4)
   stuck-on: a Redfish ForceOff and an IPMI power off are accepted, and 5 s later its
   nova-compute still runs and both BMCs read On; lying-off: both read Off while it runs, the
   other hosts read true; computeN-1 (compute3) unreachable: sushy (bounded timeouts), a new
   pyghmi login and a pyghmi session opened before fail within 15, 15 and 45 s (the times are
   printed) and its nova-compute still runs; none: both hosts read true again on both BMCs;
2. Redfish: the systems are compute1..N, each PowerState is the truth (is that host's
   nova-compute running), a wrong password gets 401;
3. Redfish ForceOff of computeN (compute4): its nova-compute process is gone and PowerState
   reads Off; On: the process is back and PowerState reads On (orders carried out again);
4. IPMI: a wrong password and an unknown user are refused; computeN-1 (compute3): power
   state is the truth, power off: process gone, state off; power on: process back, state on;
5. both hosts heartbeat to Nova again (a service ``updated_at`` newer than their power on), so
   the cloud is left as it was found. Their downtime (a few seconds) is shorter than Nova's
   ``service_down_time`` (20 s): Nova never sees them down, which is not checked here.

Credentials and ports come from ``$LEVELLER_CLOUD_RUN/bmc.json`` (written by ``cloud.sh up``).
"Running" is read from /proc (a nova-compute whose command line names computeN.conf), not from
the pid files the BMCs read. A host this check powered off is powered on again before it
exits, if need be with ``cloud.sh compute start N``, and the faults it set are cleared; it
does not start while a fault is set (another test's). Exit 0 if all pass.
"""
import datetime
import json
import os
import subprocess
import sys
import time

import openstack
import sushy
from pyghmi import exceptions as ipmi_exc
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi.private import session as ipmi_session
from sushy import auth as sushy_auth

RUN = os.environ.get('LEVELLER_CLOUD_RUN', '')
HERE = os.path.dirname(os.path.abspath(__file__))
CLOUD = os.path.join(HERE, 'cloud.sh')
# A dead BMC must cost a fencing step little: sushy tries a request twice (server_side_retries),
# 1 s apart, each attempt waiting 4 s for an answer, so it gives up after about 9 s.
REDFISH_BOUNDED = {'read_timeout': 4, 'connect_timeout': 2, 'server_side_retries': 2, 'server_side_retries_delay': 1}
UNREACHABLE_WITHIN = 15
# pyghmi has no timeout setting: on a session already open it retries, then logs in once more
# (about 29 s here); a new login gives up after about 5 s.
SESSION_UNREACHABLE_WITHIN = 45
STUCK_FOR = 5  # a stuck-on host must still run this long after a power off order (s)
results = []
powered_on = {}  # host -> time.time() of its last power on through a BMC
faulted = set()  # hosts this check set a fault on


def check(name, ok, detail=''):
    results.append((name, bool(ok), detail))
    print('%-4s %s %s' % ('ok' if ok else 'FAIL', name, detail), flush=True)
    return ok


def running(host):
    """True if a nova-compute process of this host is alive (read from /proc)."""
    want = '/%s.conf' % host
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().decode(errors='replace').split('\0')
        except OSError:
            continue
        if any(a.endswith('nova-compute') for a in args[:2]) and any(a.endswith(want) for a in args):
            return True
    return False


def timed(fn):
    """(value, exception or None, seconds) of fn()."""
    t0 = time.time()
    try:
        return fn(), None, time.time() - t0
    except Exception as e:
        return None, e, time.time() - t0


def failure(err, took):
    return '(%s after %.1f s: %s)' % (type(err).__name__, took, err) if err else '(answered in %.1f s)' % took


def ipmi_login(cred, host, user=None, password=None):
    """A pyghmi Command to host's IPMI BMC, always a new login.

    pyghmi 1.6.19 files a login in progress under the user and password as given (str) and
    removes it under their bytes: the entry stays, and the next Command to that BMC from this
    process gets the old session back, marked as logging in (it then waits forever) or broken
    (it fails at once, even once the BMC answers again). Dropping the entry avoids both.
    """
    addr, port = cred['ipmi']['address'], cred['ipmi']['ports'][host]
    user, password = user or cred['username'], password or cred['password']
    try:
        return ipmi_command.Command(bmc=addr, userid=user, password=password, port=port)
    finally:
        ipmi_session.Session.initting_sessions.pop((addr, user, password, port, None), None)


def bmc_fault(host, mode):
    """cloud.sh bmc-fault HOST MODE, as a test sets or clears a fault."""
    r = subprocess.run(['bash', CLOUD, 'bmc-fault', host, mode], capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError('cloud.sh bmc-fault %s %s failed (rc %d): %s' % (host, mode, r.returncode, (r.stdout + r.stderr).strip()))
    (faulted.discard if mode == 'none' else faulted.add)(host)
    print('     %s' % r.stdout.strip(), flush=True)


def clear_faults():
    """Clear the faults this check set (after a failed step, and at exit); never raises."""
    for h in sorted(faulted):
        print('note: clearing the fault left on %s' % h, flush=True)
        r = subprocess.run(['bash', CLOUD, 'bmc-fault', h, 'none'], capture_output=True, text=True, check=False)
        if r.returncode == 0:
            faulted.discard(h)
        else:
            print('note: cloud.sh bmc-fault %s none failed: %s' % (h, (r.stdout + r.stderr).strip()), flush=True)


def current_faults():
    """{host: mode} of the hosts with a fault, read with cloud.sh bmc-fault."""
    r = subprocess.run(['bash', CLOUD, 'bmc-fault'], capture_output=True, text=True, check=True)
    return dict(line.split() for line in r.stdout.splitlines() if line.split()[1:] != ['none'])


def wait(fn, timeout, step=0.2):
    """fn() until true or timeout; returns (value, seconds waited)."""
    t0 = time.time()
    while True:
        v = fn()
        if v or time.time() - t0 > timeout:
            return v, time.time() - t0
        time.sleep(step)


def faults(cred, host, other):
    """stuck-on and lying-off on host, unreachable on other, then none on both."""
    conn = sushy.Sushy(cred['redfish']['url'] + '/redfish/v1', auth=sushy_auth.BasicAuth(cred['username'], cred['password']),
                       **REDFISH_BOUNDED)
    path = cred['redfish']['systems']
    system = conn.get_system(path[host])
    cmd = ipmi_login(cred, host)
    check('faults: %s On before' % host, system.power_state == sushy.PowerState.ON and running(host)
          and cmd.get_power()['powerstate'] == 'on')

    bmc_fault(host, 'stuck-on')
    unused, err, took = timed(lambda: system.reset_system(sushy.ResetType.FORCE_OFF))
    check('stuck-on: redfish ForceOff %s accepted' % host, err is None, failure(err, took))
    r, err, took = timed(lambda: cmd.set_power('off', wait=False))
    check('stuck-on: ipmi power off %s accepted' % host, err is None, '%s %s' % (r or '', failure(err, took)))
    stopped, unused = wait(lambda: not running(host), STUCK_FOR)
    check('stuck-on: %s nova-compute still running %d s later' % (host, STUCK_FOR), not stopped)
    system.refresh(force=True)
    check('stuck-on: redfish %s PowerState still On' % host, system.power_state == sushy.PowerState.ON, system.power_state.value)
    state = cmd.get_power()['powerstate']
    check('stuck-on: ipmi %s power state still on' % host, state == 'on', state)

    bmc_fault(host, 'lying-off')
    system.refresh(force=True)
    check('lying-off: redfish %s PowerState Off while its nova-compute runs' % host,
          system.power_state == sushy.PowerState.OFF and running(host), system.power_state.value)
    state = cmd.get_power()['powerstate']
    check('lying-off: ipmi %s power state off while its nova-compute runs' % host, state == 'off' and running(host), state)
    state = conn.get_system(path[other]).power_state
    check('lying-off: only %s lies, redfish %s reads On' % (host, other), state == sushy.PowerState.ON and running(other), state.value)
    bmc_fault(host, 'none')

    session = ipmi_login(cred, other)  # a session open before its BMC dies
    session.get_power()
    bmc_fault(other, 'unreachable')
    unused, err, took = timed(session.get_power)
    check('unreachable: ipmi %s, session open before, fails within %d s' % (other, SESSION_UNREACHABLE_WITHIN),
          err is not None and took < SESSION_UNREACHABLE_WITHIN, failure(err, took))
    unused, err, took = timed(lambda: conn.get_system(path[other]))
    check('unreachable: redfish %s (sushy) fails within %d s' % (other, UNREACHABLE_WITHIN),
          isinstance(err, sushy.exceptions.ConnectionError) and took < UNREACHABLE_WITHIN, failure(err, took))
    unused, err, took = timed(lambda: ipmi_login(cred, other).get_power())
    check('unreachable: ipmi %s, new login, fails within %d s' % (other, UNREACHABLE_WITHIN),
          err is not None and took < UNREACHABLE_WITHIN, failure(err, took))
    check('unreachable: %s nova-compute still running' % other, running(other))
    state, err, took = timed(lambda: conn.get_system(path[host]).power_state)
    check('unreachable: only %s, redfish %s answers' % (other, host), state == sushy.PowerState.ON, failure(err, took))
    bmc_fault(other, 'none')

    for h in (host, other):
        state, err, took = timed(lambda h=h: conn.get_system(path[h]).power_state)
        check('none: redfish %s PowerState true again' % h, err is None and (state == sushy.PowerState.ON) == running(h),
              '%s %s' % (state and state.value, failure(err, took)))
        state, err, took = timed(lambda h=h: ipmi_login(cred, h).get_power()['powerstate'])
        check('none: ipmi %s power state true again' % h, err is None and (state == 'on') == running(h), '%s %s' % (state, failure(err, took)))


def redfish(cred, host, hosts):
    url = cred['redfish']['url'] + '/redfish/v1'
    bad = sushy.Sushy(url, auth=sushy_auth.BasicAuth(cred['username'], cred['password'] + 'x'))
    try:
        bad.get_system(cred['redfish']['systems'][host])
        check('redfish: wrong password refused', False, '(it was accepted)')
    except sushy.exceptions.AccessError as e:
        check('redfish: wrong password refused', e.status_code == 401, 'HTTP %s' % e.status_code)
    conn = sushy.Sushy(url, auth=sushy_auth.BasicAuth(cred['username'], cred['password']))
    ids = sorted(m.rsplit('/', 1)[1] for m in conn.get_system_collection().members_identities)
    check('redfish: one system per compute host', ids == sorted(hosts), ' '.join(ids))
    states = {h: conn.get_system(cred['redfish']['systems'][h]).power_state for h in hosts}
    check('redfish: PowerState is the truth on every host',
          all((states[h] == sushy.PowerState.ON) == running(h) for h in hosts),
          ' '.join('%s=%s' % (h, states[h].value) for h in hosts))
    system = conn.get_system(cred['redfish']['systems'][host])
    check('redfish: %s On before' % host, system.power_state == sushy.PowerState.ON and running(host))

    t0 = time.time()
    system.reset_system(sushy.ResetType.FORCE_OFF)
    answered = time.time() - t0
    gone, waited = wait(lambda: not running(host), 30)
    system.refresh(force=True)
    check('redfish: ForceOff %s stops its nova-compute' % host, gone,
          '(answered in %.1f s, process gone %.1f s later)' % (answered, waited))
    check('redfish: %s PowerState Off' % host, system.power_state == sushy.PowerState.OFF,
          system.power_state.value)

    t0 = powered_on[host] = time.time()
    system.reset_system(sushy.ResetType.ON)
    answered = time.time() - t0
    back, waited = wait(lambda: running(host), 30)
    system.refresh(force=True)
    check('redfish: On %s starts its nova-compute' % host, back,
          '(answered in %.1f s, process up %.1f s later)' % (answered, waited))
    check('redfish: %s PowerState On' % host, system.power_state == sushy.PowerState.ON,
          system.power_state.value)


def ipmi(cred, host):
    port = cred['ipmi']['ports'][host]
    for user, password, what in ((cred['username'], cred['password'] + 'x', 'wrong password'),
                                 ('nobody', cred['password'], 'unknown user')):
        try:
            ipmi_login(cred, host, user, password).get_power()
            check('ipmi: %s refused' % what, False, '(it was accepted)')
        except ipmi_exc.IpmiException as e:
            check('ipmi: %s refused' % what, True, str(e))
    cmd = ipmi_login(cred, host)
    state = cmd.get_power()['powerstate']
    check('ipmi: %s (udp %d) power state is the truth' % (host, port), (state == 'on') == running(host), state)

    t0 = time.time()
    r = cmd.set_power('off', wait=30)
    gone, waited = wait(lambda: not running(host), 30)
    check('ipmi: power off %s stops its nova-compute' % host, gone,
          '(%s in %.1f s, process gone %.1f s later)' % (r, time.time() - t0 - waited, waited))
    state = cmd.get_power()['powerstate']
    check('ipmi: %s power state off' % host, state == 'off', state)

    t0 = powered_on[host] = time.time()
    r = cmd.set_power('on', wait=30)
    back, waited = wait(lambda: running(host), 30)
    check('ipmi: power on %s starts its nova-compute' % host, back,
          '(%s in %.1f s, process up %.1f s later)' % (r, time.time() - t0 - waited, waited))
    state = cmd.get_power()['powerstate']
    check('ipmi: %s power state on' % host, state == 'on', state)


def heartbeats(timeout=90):
    """Wait until Nova has a heartbeat of each host newer than its power on."""
    conn = openstack.connect()  # OS_CLIENT_CONFIG_FILE and OS_CLOUD come from cloud.sh
    for host, t_on in sorted(powered_on.items()):
        since = datetime.datetime.fromtimestamp(t_on, datetime.timezone.utc).replace(tzinfo=None)

        def beat():
            for s in conn.compute.services(binary='nova-compute', host=host):
                if s.state == 'up' and s.updated_at and datetime.datetime.fromisoformat(s.updated_at) > since:
                    return s.updated_at
            return None
        seen, waited = wait(beat, timeout, step=1)
        check('nova: %s heartbeats again' % host, seen,
              '(updated_at %s, %.1f s after its power on)' % (seen, time.time() - t_on) if seen
              else 'no heartbeat within %d s: read %s' % (timeout, os.path.join(RUN, 'log', 'nova-%s.log' % host)))


def main():
    if not RUN:
        sys.exit('bmc_check.py: LEVELLER_CLOUD_RUN is not set: run it as cloud.sh bmc-check')
    path = os.path.join(RUN, 'bmc.json')
    try:
        with open(path) as f:
            cred = json.load(f)
    except OSError as e:
        sys.exit('bmc_check.py: cannot read %s (%s): is the cloud up (cloud.sh up)?' % (path, e))
    hosts = sorted(cred['ipmi']['ports'], key=lambda h: int(h[len('compute'):]))
    redfish_host, ipmi_host = hosts[-1], hosts[-2] if len(hosts) > 1 else hosts[0]
    found = current_faults()
    if found:
        sys.exit('bmc_check.py: BMC faults are set (%s), by a test that may still run: wait for it, or clear them '
                 '(cloud.sh bmc-fault HOST none, cloud.sh reset)' % ' '.join('%s=%s' % hm for hm in sorted(found.items())))
    try:
        for name, fn in (('faults', lambda: faults(cred, redfish_host, ipmi_host)),
                         ('redfish', lambda: redfish(cred, redfish_host, hosts)),
                         ('ipmi', lambda: ipmi(cred, ipmi_host))):
            try:
                fn()
            except Exception as e:
                check('%s: no error' % name, False, '%s: %s' % (type(e).__name__, e))
            finally:
                clear_faults()
    finally:
        clear_faults()
        for h in (redfish_host, ipmi_host):
            if not running(h):
                n = h[len('compute'):]
                print('note: %s left off, starting it: cloud.sh compute start %s' % (h, n), flush=True)
                subprocess.run(['bash', CLOUD, 'compute', 'start', n], check=False)
                powered_on[h] = time.time()
    try:
        heartbeats()
    except Exception as e:
        check('nova: heartbeats', False, '%s: %s' % (type(e).__name__, e))
    left = current_faults()
    check('faults: none left', not left, ' '.join('%s=%s' % hm for hm in sorted(left.items())))
    failed = [r for r in results if not r[1]]
    print('%d checks, %d failed' % (len(results), len(failed)))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
