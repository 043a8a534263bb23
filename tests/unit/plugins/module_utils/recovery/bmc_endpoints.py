# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small BMC endpoints on localhost, for the unit tests of the fence drivers.

The drivers are tested through the real libraries (sushy, pyghmi) over real sockets; only the
far end is small: a Redfish service with one system (HTTP basic auth, the ComputerSystem.Reset
action), and an IPMI BMC built on pyghmi's own BMC class, run in a child process. The fault
suite uses sushy-tools and a full IPMI BMC against the local cloud instead.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

SYSTEM = '/redfish/v1/Systems/sys-1'
RESET = SYSTEM + '/Actions/ComputerSystem.Reset'


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True


class RedfishBMC(object):
    """A Redfish service with one system, ``sys-1``; ``resets`` lists every ResetType posted.

    ``allowed`` is the system's ResetType@Redfish.AllowableValues; ``off_after`` how many
    reads after a ForceOff the system still reads PoweringOff.
    """

    def __init__(self, username='admin', password='pw', state='On', allowed=('On', 'ForceOff', 'GracefulShutdown',
                                                                             'ForceRestart'), off_after=0):
        self.username, self.password = username, password
        self.state = state
        self.allowed = list(allowed)
        self.off_after = off_after
        self.resets = []
        self.requests = []
        self._pending = None
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code, body=None):
                data = json.dumps(body).encode() if body is not None else b''
                self.send_response(code)
                if body is not None:
                    self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                expected = 'Basic ' + base64.b64encode(('%s:%s' % (bmc.username, bmc.password)).encode()).decode()
                return self.headers.get('Authorization') == expected

            def do_GET(self):
                path = self.path.rstrip('/')
                bmc.requests.append(('GET', path))
                if path == '/redfish/v1':
                    return self._send(200, {'@odata.id': '/redfish/v1/', 'Id': 'RootService', 'Name': 'Root',
                                            'RedfishVersion': '1.6.0', 'Systems': {'@odata.id': '/redfish/v1/Systems'}})
                if not self._authorized():
                    return self._send(401, {'error': {'code': 'Base.1.0.Unauthorized', 'message': 'bad login'}})
                if path == SYSTEM:
                    return self._send(200, bmc.system())
                return self._send(404, {'error': {'code': 'Base.1.0.ResourceMissingAtURI',
                                                  'message': 'no resource at %s' % path}})

            def do_POST(self):
                path = self.path.rstrip('/')
                bmc.requests.append(('POST', path))
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length) or b'{}')
                if not self._authorized():
                    return self._send(401, {'error': {'code': 'Base.1.0.Unauthorized', 'message': 'bad login'}})
                if path != RESET:
                    return self._send(404, {'error': {'code': 'Base.1.0.ResourceMissingAtURI', 'message': path}})
                bmc.resets.append(body.get('ResetType'))
                if body.get('ResetType') == 'ForceOff':
                    bmc._pending = bmc.off_after
                return self._send(204)

        self.server = _Server(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self._thread = threading.Thread(target=self.server.serve_forever)
        self._thread.daemon = True
        self._thread.start()

    def system(self):
        if self._pending is not None:
            if self._pending <= 0:
                self.state, self._pending = 'Off', None
            else:
                self._pending -= 1
                self.state = 'PoweringOff'
        return {'@odata.id': SYSTEM, 'Id': 'sys-1', 'Name': 'compute1', 'PowerState': self.state,
                'Actions': {'#ComputerSystem.Reset': {'target': RESET, 'ResetType@Redfish.AllowableValues': self.allowed}}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_udp_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# The IPMI BMC's program, run as python -c _IPMI_CHILD PORT USER PASSWORD.
_IPMI_CHILD = '''
import sys
import pyghmi.ipmi.bmc as bmc
from pyghmi.ipmi.private import serversession

# pyghmi's BMC answers every cipher suite with SHA-1 while its client asks for SHA-256 first;
# a real SHA-1-only BMC refuses the SHA-256 proposal (RMCP+ status 0x11), and the client then
# falls back to SHA-1. Do as such a BMC does.
_open = serversession.ServerSession.create_open_session_response


def _sha1_only(self, request):
    request = bytearray(request)
    if request[12] != 1:
        return bytearray([request[0], 0x11, 0, 0]) + request[4:8]
    return _open(self, request)


serversession.ServerSession.create_open_session_response = _sha1_only


class Bmc(bmc.Bmc):
    def __init__(self, authdata, port):
        super(Bmc, self).__init__(authdata, port=port, address='127.0.0.1')
        self.powerstate = 'on'

    def get_power_state(self):
        return self.powerstate

    def power_off(self):
        sys.stdout.write('power_off\\n')
        sys.stdout.flush()
        self.powerstate = 'off'

    def power_shutdown(self):
        sys.stdout.write('power_shutdown\\n')
        sys.stdout.flush()

    def power_reset(self):
        sys.stdout.write('power_reset\\n')
        sys.stdout.flush()


Bmc({sys.argv[2]: sys.argv[3]}, int(sys.argv[1])).listen()
'''


class IpmiBMC(object):
    """pyghmi's BMC in a child process on a free UDP port; ``orders()`` lists the chassis orders."""

    def __init__(self, username='admin', password='pw'):
        self.port = free_udp_port()
        self.out = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'leveller-ipmi-bmc-%d.log' % self.port)
        self._log = open(self.out, 'w')
        self.proc = subprocess.Popen([sys.executable, '-c', _IPMI_CHILD, str(self.port), username, password],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        time.sleep(0.5)

    def orders(self):
        with open(self.out) as f:
            return [line.strip() for line in f if line.strip() in ('power_off', 'power_shutdown', 'power_reset')]

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()
        os.unlink(self.out)
