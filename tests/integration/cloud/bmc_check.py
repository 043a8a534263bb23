"""Check of the local cloud's BMCs (``cloud.sh bmc-check``), through the client libraries
a fencing step would use: sushy (Redfish) and pyghmi (IPMI).

1. Redfish: the systems are compute1..N, each PowerState is the truth (is that host's
   nova-compute running), a wrong password gets 401;
2. Redfish ForceOff of computeN (compute4): its nova-compute process is gone and PowerState
   reads Off; On: the process is back and PowerState reads On;
3. IPMI: a wrong password and an unknown user are refused; computeN-1 (compute3): power
   state is the truth, power off: process gone, state off; power on: process back, state on;
4. both hosts heartbeat to Nova again (a service ``updated_at`` newer than their power on), so
   the cloud is left as it was found. Their downtime (a few seconds) is shorter than Nova's
   ``service_down_time`` (20 s): Nova never sees them down, which is not checked here.

Credentials and ports come from ``$LEVELLER_CLOUD_RUN/bmc.json`` (written by ``cloud.sh up``).
"Running" is read from /proc (a nova-compute whose command line names computeN.conf), not from
the pid files the BMCs read. A host this check powered off is powered on again before it
exits, if need be with ``cloud.sh compute start N``. Exit 0 if all pass.
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
from sushy import auth as sushy_auth

RUN = os.environ.get('LEVELLER_CLOUD_RUN', '')
HERE = os.path.dirname(os.path.abspath(__file__))
results = []
powered_on = {}  # host -> time.time() of its last power on through a BMC


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


def wait(fn, timeout, step=0.2):
    """fn() until true or timeout; returns (value, seconds waited)."""
    t0 = time.time()
    while True:
        v = fn()
        if v or time.time() - t0 > timeout:
            return v, time.time() - t0
        time.sleep(step)


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
    addr = cred['ipmi']['address']
    for user, password, what in ((cred['username'], cred['password'] + 'x', 'wrong password'),
                                 ('nobody', cred['password'], 'unknown user')):
        try:
            ipmi_command.Command(bmc=addr, userid=user, password=password, port=port).get_power()
            check('ipmi: %s refused' % what, False, '(it was accepted)')
        except ipmi_exc.IpmiException as e:
            check('ipmi: %s refused' % what, True, str(e))
    cmd = ipmi_command.Command(bmc=addr, userid=cred['username'], password=cred['password'], port=port)
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
    try:
        for name, fn in (('redfish', lambda: redfish(cred, redfish_host, hosts)),
                         ('ipmi', lambda: ipmi(cred, ipmi_host))):
            try:
                fn()
            except Exception as e:
                check('%s: no error' % name, False, '%s: %s' % (type(e).__name__, e))
    finally:
        for h in (redfish_host, ipmi_host):
            if not running(h):
                n = h[len('compute'):]
                print('note: %s left off, starting it: cloud.sh compute start %s' % (h, n), flush=True)
                subprocess.run(['bash', os.path.join(HERE, 'cloud.sh'), 'compute', 'start', n], check=False)
                powered_on[h] = time.time()
    try:
        heartbeats()
    except Exception as e:
        check('nova: heartbeats', False, '%s: %s' % (type(e).__name__, e))
    failed = [r for r in results if not r[1]]
    print('%d checks, %d failed' % (len(results), len(failed)))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
