# -*- coding: utf-8 -*-
# Copyright: cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node-exporter stand-in for each compute host of the local test cloud (test-only code).

    python host_exporter.py PORT_BASE compute1 compute2 ...

Serves /metrics for host computeN on 127.0.0.1:PORT_BASE+N while that host is powered on, that
is while its nova-compute process group (run/pids/nova-computeN.pid, the BMC's notion of power)
is alive; a powered-off host answers 503, so Prometheus reads up == 0 for it, as it would for
the node-exporter of a host that died. The local cloud's own node metrics come from the
Pushgateway, which outlives the hosts, so they cannot show a host going down.
"""
import http.server
import os
import sys
import threading

RUN = os.environ["LEVELLER_CLOUD_RUN"]


def powered_on(host):
    """True while the host's nova-compute process group is alive."""
    try:
        with open(os.path.join(RUN, "pids", "nova-%s.pid" % host)) as f:
            os.killpg(int(f.read()), 0)
        return True
    except (OSError, ValueError):
        return False


def handler_for(host):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            if self.path != "/metrics":
                self.send_error(404)
                return
            if not powered_on(host):
                self.send_error(503, "%s is powered off" % host)
                return
            body = ('# TYPE node_uname_info gauge\nnode_uname_info{nodename="%s"} 1\n' % host).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def main(argv):
    base = int(argv[1])
    servers = []
    for host in argv[2:]:
        port = base + int(host[len("compute"):])
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(host))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print("%s: http://127.0.0.1:%d/metrics" % (host, port), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv)
