# -*- coding: utf-8 -*-
# Copyright: cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receive Alertmanager webhook notifications and put one event per alert on the queue.

Arguments (all optional):

    host: address to listen on (default 127.0.0.1)
    port: TCP port (default 5001; 5000 is Keystone's)
    path: URL path Alertmanager posts to (default /alerts)
    token: when set, requests must carry "Authorization: Bearer <token>"
           (Alertmanager: webhook_configs[].http_config.authorization.credentials)
    host_labels: alert labels that may name the hypervisor, first match wins
                 (default [hypervisor, host, nodename, instance]); a ":port" suffix
                 (node-exporter's instance label) is removed

Each event is:

    {"alert": <the alert as Alertmanager sent it>, "host": <hypervisor name or "">,
     "meta": {"endpoint": <path>, "receiver": ..., "group_key": ..., "external_url": ...}}

Example rulebook source:

    sources:
      - cloudops.leveller.alertmanager:
          host: 0.0.0.0
          port: 5001
"""

import asyncio
import json
import logging
import re
from typing import Any

from aiohttp import web

LOG = logging.getLogger(__name__)
DEFAULT_HOST_LABELS = ("hypervisor", "host", "nodename", "instance")
# "host:9100", "10.0.0.5:9100", "[fd00::5]:9100" -> the part before the port
PORT_SUFFIX = re.compile(r"^\[?(?P<name>[^\[\]]+?)\]?:\d+$")


def host_of(labels: dict, host_labels) -> str:
    """The hypervisor an alert is about, from the first label present (port removed)."""
    for label in host_labels:
        value = labels.get(label)
        if value:
            match = PORT_SUFFIX.match(value)
            return match.group("name") if match else value
    return ""


def events_of(payload: dict, endpoint: str, host_labels) -> list:
    """One event per alert of an Alertmanager webhook payload (version 4)."""
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
        events.append({"alert": alert, "host": host_of(labels, host_labels), "meta": dict(meta)})
    return events


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Serve the webhook until cancelled."""
    host = args.get("host", "127.0.0.1")
    port = int(args.get("port", 5001))
    path = args.get("path", "/alerts")
    token = args.get("token")
    host_labels = tuple(args.get("host_labels") or DEFAULT_HOST_LABELS)

    async def receive(request: web.Request) -> web.Response:
        if token and request.headers.get("Authorization", "") != "Bearer %s" % token:
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:
            payload = await request.json()
            events = events_of(payload, path, host_labels)
        except (json.JSONDecodeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for event in events:
            await queue.put(event)
        LOG.info("received %d alert(s) from %s", len(events), request.remote)
        return web.json_response({"received": len(events)})

    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
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

    asyncio.run(main(_PrintQueue(), {}))
