# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small fault-injecting HTTP proxy of the fault suite (loopback only, bounded in time).

It forwards every request to the target (nova-api) and passes the answer back, except for the
first N requests whose method and path match ``--match``; for those it injects one fault:

  drop   forward the request, read Nova's answer, then close the client's connection without a
         word: Nova did the work, the caller never hears of it (a lost 202)
  502    do not forward; answer 502 Bad Gateway (Nova never saw the request)
  hold   do not forward, do not answer: the caller hangs on the call (a test kills it there)

Every request is logged as one JSON line on stdout (method, path, what was done), so a test can
count how many start calls reached Nova. It exits by itself after ``--lifetime`` seconds.
"""

import argparse
import http.client
import http.server
import json
import re
import sys
import threading
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--target", type=int, required=True, help="nova-api port on 127.0.0.1")
    parser.add_argument("--mode", choices=["drop", "502", "hold"], required=True,
                        help="drop: forward, lose the answer; 502: answer 502, not forwarded; "
                             "hold: never forward, never answer (the caller hangs)")
    parser.add_argument("--match", required=True, help="regex on 'METHOD path' and the body")
    parser.add_argument("--times", type=int, default=1, help="how many matching requests get the fault")
    parser.add_argument("--lifetime", type=float, default=300.0, help="seconds before it exits")
    args = parser.parse_args()
    pattern = re.compile(args.match)
    state = {"left": args.times}
    lock = threading.Lock()

    def log(**fields):
        fields["t"] = round(time.time(), 3)
        sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
        sys.stdout.flush()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # the JSON lines are the log
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            what = "%s %s %s" % (self.command, self.path, body.decode("utf-8", "replace"))
            fault = None
            with lock:
                if state["left"] > 0 and pattern.search(what):
                    state["left"] -= 1
                    fault = args.mode
            if fault == "hold":
                log(method=self.command, path=self.path, action="held, not forwarded")
                time.sleep(args.lifetime)
                self.close_connection = True
                return
            if fault == "502":
                log(method=self.command, path=self.path, action="answered 502, not forwarded")
                payload = b'{"message": "injected by fault_proxy.py"}'
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            upstream = http.client.HTTPConnection("127.0.0.1", args.target, timeout=120)
            headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in ("host", "connection"))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            upstream.close()
            if fault == "drop":
                log(method=self.command, path=self.path, action="forwarded, answer %d dropped" % answer.status)
                self.close_connection = True
                self.connection.close()
                return
            log(method=self.command, path=self.path, action="forwarded", status=answer.status)
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.listen), Handler)
    server.daemon_threads = True
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    log(action="listening", port=args.listen, target=args.target, mode=args.mode, match=args.match)
    server.serve_forever()
    log(action="stopped after lifetime")


if __name__ == "__main__":
    main()
