"""Read-only stand-in for the Neutron API (the one imitation in the local
cloud): enough for Nova servers booted with networks='none' (microversion
>= 2.37). Every collection is empty, the extension list is empty, the
'default' security group exists. Every request is logged, so the log shows
what Nova asked Neutron for. Listens on 127.0.0.1 only.

Usage: python fake_neutron.py [PORT]   (default 9696)
"""
import json
import logging
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9696
logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format='%(asctime)s fake-neutron %(message)s')
SG_ID = str(uuid.UUID(int=1))
NOT_FOUND = {'NeutronError': {'type': 'NotFound', 'message': 'fake neutron',
                              'detail': ''}}


def collection(name):
    key = name.replace('-', '_')
    if key == 'security_groups':
        return {key: [{'id': SG_ID, 'name': 'default', 'description': '',
                       'security_group_rules': [], 'tenant_id': '',
                       'project_id': ''}]}
    return {key: []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        logging.info('%s %s', self.command, self.path)

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # pylint: disable=invalid-name
        path = self.path.partition('?')[0].rstrip('/')
        if path in ('', '/'):
            return self._send(200, {'versions': [{
                'id': 'v2.0', 'status': 'CURRENT', 'links': [{
                    'rel': 'self',
                    'href': 'http://127.0.0.1:%d/v2.0/' % PORT}]}]})
        if path == '/v2.0':
            return self._send(200, {'resources': []})
        m = re.match(r'^/v2\.0/([a-z0-9_-]+?)(?:\.json)?$', path)
        if m:
            return self._send(200, collection(m.group(1)))
        if re.match(r'^/v2\.0/quotas/[^/]+', path):
            return self._send(200, {'quota': {}})
        body = dict(NOT_FOUND)
        body['NeutronError'] = dict(NOT_FOUND['NeutronError'],
                                    message='fake neutron: %s' % path)
        return self._send(404, body)

    def _body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def do_PUT(self):  # pylint: disable=invalid-name
        self._body()
        self._send(404, NOT_FOUND)

    do_POST = do_PUT

    def do_DELETE(self):  # pylint: disable=invalid-name
        self.send_response(204)
        self.send_header('Content-Length', '0')
        self.end_headers()


def main():
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()


if __name__ == '__main__':
    main()
