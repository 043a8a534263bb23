# -*- coding: utf-8 -*-
# Copyright: cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receive Alertmanager webhook notifications and put one event per alert on the queue.

Arguments:

    token: required. Requests must carry "Authorization: Bearer <token>" (Alertmanager:
           webhook_configs[].http_config.authorization.credentials); at least 16 characters.
    insecure_no_auth: true to run without a token, so that anyone who reaches the port can start
           a recovery (default false; the source refuses to start without a token otherwise)
    host: address to listen on (default 127.0.0.1)
    port: TCP port (default 5001; 5000 is Keystone's)
    path: URL path Alertmanager posts to (default /alerts)
    host_labels: alert labels that may name the hypervisor; the first one present is used
           (default [hypervisor, host, nodename, instance])
    host_map: {label value: Nova service host}, for labels that are not service host names
           (FQDNs, addresses); a value is looked up with its ":port" and then without it
    host_regex: for values not in host_map: a regular expression that must match the value
           (port removed); the service host is its group "host", else its group 1, else the
           whole match. A value it does not match is refused.

The host: the label's value, its ":port" suffix removed (node-exporter's instance label),
mapped through host_map or host_regex, must be a plain host name
(^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$) that reaches ansible-rulebook's native templating as the
same string. Anything else is refused: the event's "host" is then "" and "host_error" says why.
Whether the name is a compute service host of the cloud is checked by evacuate_host, before it
changes anything.

Each event is:

    {"alert": <the alert as Alertmanager sent it>,
     "host": <the checked service host, or "">, "host_error": <"" or why the label was refused>,
     "checked": {"host": <the same>, "label": <the label it came from>,
                 "fingerprint": <Alertmanager's, if hex>},
     "meta": {"endpoint": <path>, "receiver": ..., "group_key": ..., "external_url": ...}}

"checked" holds only values this source has validated. A rulebook hands it alone to a playbook
(run_playbook var_root: checked): ansible-playbook renders extra vars as templates when it reads
them, so a raw label such as "{{ lookup('pipe', 'id') }}" must never reach it.

Example rulebook source:

    sources:
      - cloudops.leveller.alertmanager:
          host: 0.0.0.0
          port: 5001
          token: "{{ leveller_eda_token }}"
          host_map: {cmp042.example.org: cmp042}
"""

import ast
import asyncio
import hmac
import json
import logging
import re
from typing import Any

from aiohttp import web

LOG = logging.getLogger(__name__)
DEFAULT_HOST_LABELS = ("hypervisor", "host", "nodename", "instance")
MIN_TOKEN_LENGTH = 16
# "host:9100", "10.0.0.5:9100", "[fd00::5]:9100" -> the part before the port
PORT_SUFFIX = re.compile(r"\[?(?P<name>[^\[\]]+?)\]?:\d+")
# what Nova accepts as a host and no template language can read as code
PLAIN_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
HEX = re.compile(r"[0-9a-f]{1,64}")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0", "")


class HostPolicy:
    """Turns an alert's labels into a Nova service host, or says why it cannot."""

    def __init__(self, host_labels=None, host_map=None, host_regex=None):
        self.host_labels = tuple(host_labels or DEFAULT_HOST_LABELS)
        if not all(isinstance(label, str) and label for label in self.host_labels):
            raise ValueError("host_labels must be a list of label names, got %r" % (host_labels,))
        host_map = host_map or {}
        if not isinstance(host_map, dict):
            raise ValueError("host_map must be a mapping {label value: Nova service host}, got %r" % (host_map,))
        self.host_map = {}
        for key, value in host_map.items():
            problem = plain_host_problem(value)
            if problem:
                raise ValueError("host_map[%r] = %s: %s" % (key, shown(value), problem))
            self.host_map[str(key)] = value
        self.host_regex = None
        if host_regex:
            try:
                self.host_regex = re.compile(host_regex)
            except re.error as exc:
                raise ValueError("host_regex %r is not a regular expression: %s" % (host_regex, exc))

    def host_of(self, labels):
        """(label name, service host, "") for the first host label present, or (name, "", why)."""
        if not isinstance(labels, dict):
            return "", "", "the alert has no labels"
        for label in self.host_labels:
            value = labels.get(label)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                return label, "", "label %s is not a string: %r" % (label, value)
            host, problem = self.map(value)
            if problem:
                return label, "", "label %s=%s: %s" % (label, shown(value), problem)
            return label, host, ""
        return "", "", "no host label (%s) in the alert" % ", ".join(self.host_labels)

    def map(self, value):
        """(service host, "") for a label value, or ("", why it is refused)."""
        if value in self.host_map:
            return self.host_map[value], ""
        match = PORT_SUFFIX.fullmatch(value)
        name = match.group("name") if match else value
        if name in self.host_map:
            return self.host_map[name], ""
        if self.host_regex is not None:
            found = self.host_regex.search(name)
            if not found:
                return "", "does not match host_regex %r and is not in host_map" % self.host_regex.pattern
            groups = found.groupdict()
            if groups.get("host") is not None:
                name = groups["host"]
            elif found.re.groups:
                name = found.group(1) or ""
            else:
                name = found.group(0)
        problem = plain_host_problem(name)
        if problem:
            if name != value:
                problem = "gives %s, %s" % (shown(name), problem)
            return "", problem + ": map it to a Nova service host with host_map or host_regex"
        return name, ""


def plain_host_problem(name):
    """Why a name cannot be passed on as a service host, or "" when it can."""
    if not isinstance(name, str) or not PLAIN_HOST.fullmatch(name):
        return "not a plain host name (letters, digits, '.', '_', '-'; at most 253)"
    # ansible-rulebook renders extra_vars with Jinja's native types: "1e3" would reach the
    # playbook as the number 1000.0, another host's name
    try:
        literal = ast.literal_eval(name)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ""
    if isinstance(literal, int) and not isinstance(literal, bool) and str(literal) == name:
        return ""
    return "read as a Python literal, it would reach the playbook as %r, not as this name" % (literal,)


def shown(value, limit=120):
    """A value as it may be logged: repr, cut to limit characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def flag(args, name):
    """A boolean argument; strings from --env-vars are read too, anything else is an error."""
    value = args.get(name, False)
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("%s must be true or false, got %r" % (name, value))


def token_of(args):
    """The bearer token, or None with insecure_no_auth; refuses to start otherwise."""
    token = args.get("token")
    # a numeric token comes back from native templating as a number
    token = "" if token is None else str(token)
    if token:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                "the webhook token is %d characters long: use at least %d (openssl rand -hex 32)"
                % (len(token), MIN_TOKEN_LENGTH))
        return token
    if flag(args, "insecure_no_auth"):
        return None
    raise ValueError(
        "the Alertmanager webhook has no token: anyone who reaches it could start a recovery. "
        "Set token (rulebook variable leveller_eda_token) and give Alertmanager's "
        "webhook_configs[].http_config.authorization.credentials the same value; "
        "or set insecure_no_auth: true (leveller_eda_insecure_no_auth) to accept any caller")


def events_of(payload: dict, endpoint: str, policy: HostPolicy) -> list:
    """One event per alert of an Alertmanager webhook payload (version 4)."""
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object: is it an Alertmanager webhook notification?")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("the payload has no 'alerts' list: is it an Alertmanager webhook notification?")
    meta = {
        "endpoint": endpoint,
        "receiver": payload.get("receiver", ""),
        "group_key": payload.get("groupKey", ""),
        "external_url": payload.get("externalURL", ""),
    }
    events = []
    for alert in alerts:
        if not isinstance(alert, dict):
            raise ValueError("an alert in the payload is not an object")
        labels = alert.get("labels") or {}
        label, host, problem = policy.host_of(labels)
        fingerprint = alert.get("fingerprint")
        checked = {
            "host": host,
            "label": label,
            "fingerprint": fingerprint if isinstance(fingerprint, str) and HEX.fullmatch(fingerprint) else "",
        }
        if problem:
            name = labels.get("alertname") if isinstance(labels, dict) else None
            # a label that names no host is worth a warning; an alert without one is not
            LOG.log(logging.WARNING if label else logging.INFO, "alert %s: no host for recovery: %s", shown(name), problem)
        events.append({"alert": alert, "host": host, "host_error": problem, "checked": checked, "meta": dict(meta)})
    return events


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Serve the webhook until cancelled."""
    host = args.get("host", "127.0.0.1")
    port = int(args.get("port", 5001))
    path = args.get("path", "/alerts")
    token = token_of(args)
    policy = HostPolicy(args.get("host_labels"), args.get("host_map"), args.get("host_regex") or None)
    expected = ("Bearer %s" % token).encode() if token else None

    async def receive(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                LOG.warning("refused a webhook call from %s: missing or wrong bearer token", request.remote)
                return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                         headers={"WWW-Authenticate": "Bearer"})
        try:
            payload = await request.json()
            events = events_of(payload, path, policy)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for event in events:
            await queue.put(event)
        LOG.info("received %d alert(s) from %s", len(events), request.remote)
        return web.json_response({"received": len(events), "refused": sum(1 for e in events if e["host_error"])})

    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    if token is None:
        LOG.warning("insecure_no_auth: the webhook on http://%s:%d%s accepts any caller", host, port, path)
    LOG.info("listening for Alertmanager on http://%s:%d%s", host, port, path)
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    # Run alone to see what events a payload becomes: python alertmanager.py, then POST to it.
    class _PrintQueue:
        async def put(self, event):
            print(json.dumps(event))

    asyncio.run(main(_PrintQueue(), {"insecure_no_auth": True}))
