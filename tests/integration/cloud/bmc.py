"""BMC endpoints of the local test cloud's compute hosts (test-only code).

    bmc.py init N REDFISH_PORT IPMI_PORT_BASE   write run/bmc.json (the password is kept once made)
                                                and run/bmc/htpasswd
    bmc.py redfish    sushy-tools' Redfish emulator: one ComputerSystem per host (Id computeN)
    bmc.py ipmi       pyghmi's BMC simulator: host computeN on UDP IPMI_PORT_BASE + N
    bmc.py fault [computeN MODE]                print the fault mode of every host, or set one:
                                                none, stuck-on, unreachable, lying-off
    bmc.py fault --clear [--dry-run]            set every host back to none; print what was set

Power is the host's nova-compute process: a system is On while that process group (the PID in
run/pids/nova-computeN.pid) is alive, whoever started or stopped it. Power actions run
``cloud.sh compute kill|stop|start N``, one at a time per host, so the pid files and the logs
stay those of cloud.sh. Run by cloud.sh with the tools venv's python (sushy-tools, pyghmi);
``fault`` needs only the standard library.

Fault modes (run/bmc/faults.json, read by both BMCs on every request, so a change takes
effect at once without a restart), for the fencing fault cases:

    none         the truth, and power orders carried out
    stuck-on     power orders accepted (Redfish 204, IPMI success) and not carried out;
                 the power state reads the truth (On while nova-compute runs)
    unreachable  no answer for that host: a Redfish request for its system or manager is
                 held unanswered until the client gives up, then the connection is closed;
                 its IPMI datagrams are dropped unread
    lying-off    as stuck-on, but the power state reads Off whatever the process does
"""
import concurrent.futures
import fcntl
import json
import logging
import os
import re
import secrets
import select
import subprocess
import sys
import time
import uuid

RUN = os.environ.get('LEVELLER_CLOUD_RUN', '')
HERE = os.path.dirname(os.path.abspath(__file__))
CRED = os.path.join(RUN, 'bmc.json')
HTPASSWD = os.path.join(RUN, 'bmc', 'htpasswd')
FAULTS = os.path.join(RUN, 'bmc', 'faults.json')
MODES = ('none', 'stuck-on', 'unreachable', 'lying-off')
HOLD_MAX = 300  # an unreachable host's Redfish request is held at most this long (s)
USER = 'leveller-bmc'
LOG = logging.getLogger('bmc')


def write_private(path, text):
    """Replace path with text at once (readers never see half a file), mode 0600."""
    tmp = path + '.tmp'
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def init(ncompute, redfish_port, ipmi_base):
    """Write bmc.json (URL, ports, credentials) and the bcrypt htpasswd of the Redfish BMC."""
    import bcrypt
    password = None
    if os.path.exists(CRED):
        with open(CRED) as f:
            password = json.load(f).get('password')
    password = password or secrets.token_hex(12)
    hosts = ['compute%d' % n for n in range(1, ncompute + 1)]
    data = {
        'username': USER, 'password': password,
        'redfish': {'url': 'http://127.0.0.1:%d' % redfish_port,
                    'systems': {h: '/redfish/v1/Systems/%s' % h for h in hosts}},
        'ipmi': {'address': '127.0.0.1',
                 'ports': {h: ipmi_base + n for n, h in enumerate(hosts, 1)}},
    }
    os.makedirs(os.path.dirname(HTPASSWD), exist_ok=True)
    for path, text in ((CRED, json.dumps(data, indent=1, sort_keys=True) + '\n'),
                       (HTPASSWD, '%s:%s\n' % (USER, bcrypt.hashpw(
                           password.encode(), bcrypt.gensalt(rounds=4)).decode()))):
        write_private(path, text)


def read_faults():
    """{host: mode} of the hosts whose mode is not none; ValueError if the file is not valid."""
    try:
        with open(FAULTS) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or any(m not in MODES for m in data.values()):
        raise ValueError('%s: want {"computeN": "%s", ...}, got %r' % (FAULTS, '|'.join(MODES), data))
    return {h: m for h, m in data.items() if m != 'none'}


def fault_mode(host):
    """The host's fault mode now (the BMCs ask on every request); a broken file counts as none."""
    try:
        return read_faults().get(host, 'none')
    except ValueError as e:
        LOG.error('%s: every host taken as none; fix it with cloud.sh bmc-fault computeN MODE', e)
        return 'none'


def change_faults(update, dry_run=False):
    """Apply update(faults) to faults.json under its lock; returns the faults before."""
    os.makedirs(os.path.dirname(FAULTS), exist_ok=True)
    with open(os.open(FAULTS + '.lock', os.O_WRONLY | os.O_CREAT, 0o600)) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two tests setting faults at once lose neither
        try:
            before = read_faults()
        except ValueError as e:
            LOG.warning('%s: replaced', e)
            before = {}
        after = {h: m for h, m in update(dict(before)).items() if m != 'none'}
        if not dry_run and after != before:
            write_private(FAULTS, json.dumps(after, indent=1, sort_keys=True) + '\n')
    return before


def fault(args):
    """cloud.sh bmc-fault: print, set or clear the fault modes."""
    if args[:1] == ['--clear'] and args[1:] in ([], ['--dry-run']):
        if not os.path.exists(FAULTS):
            return
        before = change_faults(lambda faults: {}, dry_run=bool(args[1:]))
        if before:
            print(' '.join('%s=%s' % hm for hm in sorted(before.items())))
        return
    try:
        with open(CRED) as f:
            hosts = sorted(json.load(f)['ipmi']['ports'], key=lambda h: int(h[len('compute'):]))
    except OSError as e:
        sys.exit('bmc-fault: cannot read %s (%s): is the cloud up (cloud.sh up)?' % (CRED, e))
    if not args:
        faults = read_faults()
        for h in hosts:
            print('%-10s %s' % (h, faults.get(h, 'none')))
        return
    if len(args) != 2 or args[0] not in hosts or args[1] not in MODES:
        sys.exit('usage: cloud.sh bmc-fault [HOST MODE]: HOST one of %s, MODE one of %s'
                 % (' '.join(hosts), ' '.join(MODES)))
    host, mode = args

    def put(faults):
        faults[host] = mode
        return faults
    was = change_faults(put).get(host, 'none')
    print('bmc-fault: %s %s (was %s)' % (host, mode, was))


class Host:
    """One compute host: its power is its nova-compute process."""

    def __init__(self, name):
        self.name = name
        self.n = int(name[len('compute'):])
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name + '.leveller.test'))
        self.pidfile = os.path.join(RUN, 'pids', 'nova-compute%d.pid' % self.n)
        self.boot_device = None
        # one worker per host: actions on a host run in the order they were asked for
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    def is_on(self):
        try:
            with open(self.pidfile) as f:
                os.killpg(int(f.read()), 0)
            return True
        except (OSError, ValueError):
            return False

    def power(self, *actions, wait=True):
        """Run cloud.sh compute ACTION N for each action; wait=False answers at once."""
        job = self._worker.submit(self._run, actions)
        return job.result() if wait else None

    def _run(self, actions):
        for action in actions:
            cmd = ['bash', os.path.join(HERE, 'cloud.sh'), 'compute', action, str(self.n)]
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            out = ' '.join((r.stdout + r.stderr).split())
            LOG.info('%s: cloud.sh compute %s %d: rc %d %s', self.name, action, self.n, r.returncode, out)
            if r.returncode:
                raise RuntimeError('cloud.sh compute %s %d failed (rc %d): %s' % (action, self.n, r.returncode, out))


def hosts_from(cred):
    return {h: Host(h) for h in sorted(cred['ipmi']['ports'], key=lambda h: int(h[len('compute'):]))}


RESET_TYPES = ('On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'PushPowerButton', 'ForceRestart', 'GracefulRestart')
# what an unreachable host does not answer: its system and its manager, with everything below
HOST_PATH = re.compile(r'/redfish/v1/(?:Systems|Managers)/([^/?#]+)')


def redfish(cred):
    from sushy_tools import error
    from sushy_tools.emulator import main as emulator
    from sushy_tools.emulator.resources.systems.base import AbstractSystemsDriver
    from werkzeug import serving

    class Systems(AbstractSystemsDriver):
        """The compute hosts as Redfish ComputerSystems (Id = host name)."""

        def __init__(self, hosts):
            self._hosts = hosts

        def _host(self, identity):
            for h in self._hosts.values():
                if identity in (h.name, h.uuid):
                    return h
            raise error.NotFound('no system %s: the systems are %s' % (identity, ', '.join(self._hosts)))

        @property
        def driver(self):
            return '<leveller nova-compute hosts>'

        @property
        def systems(self):
            return list(self._hosts)

        def uuid(self, identity):
            return self._host(identity).uuid

        def name(self, identity):
            return self._host(identity).name

        def get_power_state(self, identity):
            h = self._host(identity)
            if fault_mode(h.name) == 'lying-off':
                return 'Off'
            return 'On' if h.is_on() else 'Off'

        def set_power_state(self, identity, state):
            # Force* and On act before the answer; graceful ones answer at once (TERM, then
            # KILL after 10 s), as a BMC does while the OS shuts down.
            h = self._host(identity)
            if state not in RESET_TYPES:
                raise error.BadRequest('ResetType %s is not supported by the local cloud BMC' % state)
            mode = fault_mode(h.name)
            if mode in ('stuck-on', 'lying-off'):
                LOG.info('%s: %s accepted and not carried out (fault %s)', h.name, state, mode)
                return
            on = h.is_on()
            if state in ('On', 'ForceOn') or (state == 'PushPowerButton' and not on):
                h.power('start')
            elif state == 'ForceOff':
                h.power('kill')
            elif state in ('GracefulShutdown', 'PushPowerButton'):
                h.power('stop', wait=False)
            elif state == 'ForceRestart':
                h.power('kill', 'start')
            elif state == 'GracefulRestart':
                h.power('stop', 'start', wait=False)

        def get_boot_device(self, identity):
            return self._host(identity).boot_device or 'Hdd'

        def set_boot_device(self, identity, boot_source):
            self._host(identity).boot_device = boot_source

    class Handler(serving.WSGIRequestHandler):
        """Plays dead for a host in fault unreachable, before Flask or the password check."""

        def run_wsgi(self):
            m = HOST_PATH.match(self.path)
            host = m and next((h.name for h in hosts.values() if m.group(1) in (h.name, h.uuid)), None)
            if host and fault_mode(host) == 'unreachable':
                self.play_dead(host)
            else:
                super().run_wsgi()

        def play_dead(self, host):
            # As a BMC that does not answer: no status line, no byte; the connection is kept
            # until the client gives up (it closes it), the fault is cleared or HOLD_MAX, then
            # closed without an answer. Body bytes still unread are read and dropped.
            t0, why = time.monotonic(), 'held for %d s' % HOLD_MAX
            while time.monotonic() - t0 < HOLD_MAX:
                if fault_mode(host) != 'unreachable':
                    why = 'fault cleared'
                    break
                if select.select([self.connection], [], [], 0.5)[0]:
                    try:
                        data = self.connection.recv(65536)
                    except OSError:
                        data = b''
                    if not data:
                        why = 'the client gave up'
                        break
            self.close_connection = True
            LOG.info('%s: unreachable: %s %s held %.1f s and closed without an answer (%s)',
                     host, self.command, self.path, time.monotonic() - t0, why)

    hosts = hosts_from(cred)
    systems = Systems(hosts)
    app = emulator.app
    type(app).systems = property(lambda self: systems)
    app.configure(extra_config={'SUSHY_EMULATOR_AUTH_FILE': HTPASSWD})
    url = cred['redfish']['url']
    port = int(url.rsplit(':', 1)[1])
    LOG.info('redfish: %s/redfish/v1/Systems/{%s}', url, ','.join(systems.systems))
    app.run(host='127.0.0.1', port=port, threaded=True, request_handler=Handler)


def ipmi(cred):
    import pyghmi.ipmi.bmc
    from pyghmi.ipmi.private import constants, serversession
    from pyghmi.ipmi.private import session as ipmisession

    # pyghmi's client asks for cipher suite 17 (SHA-256) first and falls back to suite 3
    # (SHA-1) only when refused; the simulator answers suite 3 without looking, and the client
    # then fails in RAKP2 (struct.error). Refuse what it does not do, as a suite-3-only BMC does.
    open_session = serversession.ServerSession.create_open_session_response

    def suite3_only(self, request):
        if request[12] != 1 or request[20] != 1:  # authentication, integrity algorithm: HMAC-SHA1
            return bytearray([request[0], 0x11, 0, 0]) + request[4:8]  # 0x11: no cipher suite match
        return open_session(self, request)

    # An unknown user name gets no answer from the simulator (the client waits for minutes);
    # a BMC answers RAKP2 with 0x0d (unauthorized name).
    rakp1 = serversession.ServerSession._got_rakp1

    def unknown_user_refused(self, data):
        if data[27] and self.authdata.get(bytes(data[28:]).decode('utf-8', 'replace')) is None:
            self.send_payload(bytearray([data[0], 0x0d, 0, 0]) + self.clientsessionid,
                              constants.payload_types['rakp2'], retry=False)
            return
        return rakp1(self, data)

    serversession.ServerSession.create_open_session_response = suite3_only
    serversession.ServerSession._got_rakp1 = unknown_user_refused

    # A host in fault unreachable: its datagrams are read and dropped before pyghmi routes
    # them, so no answer of any kind goes out (session setup, commands, keepalives).
    recvfrom = ipmisession._io_recvfrom

    def recvfrom_unless_unreachable(sock, size):
        while True:
            got = recvfrom(sock, size)
            if got is None:
                return None
            try:
                host = port_host.get(sock.getsockname()[1])
            except OSError:
                return got
            if host is None or fault_mode(host) != 'unreachable':
                return got
            LOG.info('%s: unreachable: dropped a datagram from %s:%s', host, *got[1][:2])

    ipmisession._io_recvfrom = recvfrom_unless_unreachable

    class HostBmc(pyghmi.ipmi.bmc.Bmc):
        """IPMI BMC of one compute host."""

        def __init__(self, host, port):
            super().__init__({cred['username']: cred['password']}, port=port,
                             bmcuuid=uuid.UUID(host.uuid), address='127.0.0.1')
            self.host = host

        def get_system_guid(self):
            return self.uuid

        def get_power_state(self):
            if fault_mode(self.host.name) == 'lying-off':
                return 'off'
            return 'on' if self.host.is_on() else 'off'

        # The pyghmi loop serves every host from one thread: actions answer at once and run
        # on the host's worker; clients poll the power state (Command.set_power(wait=True)).
        def act(self, order, *actions):
            mode = fault_mode(self.host.name)
            if mode in ('stuck-on', 'lying-off'):
                LOG.info('%s: power %s accepted and not carried out (fault %s)', self.host.name, order, mode)
            else:
                self.host.power(*actions, wait=False)

        def power_on(self):
            self.act('on', 'start')

        def power_off(self):
            self.act('off', 'kill')

        def power_shutdown(self):
            self.act('shutdown', 'stop')

        def power_reset(self):
            self.act('reset', 'kill', 'start')

        power_cycle = power_reset

        def get_boot_device(self):
            return self.host.boot_device or 'default'

        def set_boot_device(self, bootdevice):
            self.host.boot_device = bootdevice

    hosts = hosts_from(cred)
    port_host = {cred['ipmi']['ports'][name]: name for name in hosts}
    bmcs = [HostBmc(h, cred['ipmi']['ports'][name]) for name, h in hosts.items()]
    LOG.info('ipmi: listening on 127.0.0.1 udp %s', ' '.join('%s=%d' % (b.host.name, b.port) for b in bmcs))
    pyghmi.ipmi.bmc.Bmc.listen()


def main(argv):
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s %(message)s')
    if not RUN:
        sys.exit('bmc.py: LEVELLER_CLOUD_RUN is not set: run it through cloud.sh')
    if argv[:1] == ['init'] and len(argv) == 4:
        return init(*(int(a) for a in argv[1:]))
    if argv[:1] == ['fault']:
        return fault(argv[1:])
    if argv in (['redfish'], ['ipmi']):
        with open(CRED) as f:
            cred = json.load(f)
        return (redfish if argv[0] == 'redfish' else ipmi)(cred)
    sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
