# -*- coding: utf-8 -*-
# Copyright: cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the alertmanager event source without ansible-rulebook (run by runme.sh).

    python test_alertmanager_source.py   (needs aiohttp: the ansible-rulebook venv has it)
"""
import asyncio
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.join("extensions", "eda", "plugins", "event_source")


def _source_dir():
    """The collection's event source folder: up from here (in a checkout, and from the copy of the
    target ansible-test runs, which lives under the collection's tests/output)."""
    here = HERE
    while True:
        candidate = os.path.join(here, SOURCE_DIR)
        if os.path.isfile(os.path.join(candidate, "alertmanager.py")):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            sys.exit("FAIL: no %s/alertmanager.py above %s" % (SOURCE_DIR, HERE))
        here = parent


sys.path.insert(0, _source_dir())

import alertmanager  # noqa: E402 pylint: disable=wrong-import-position

TEMPLATE = "{{ lookup('pipe', 'id') }}"


def alert(labels, fingerprint="0123456789abcdef"):
    return {"status": "firing", "labels": dict(labels, alertname="HypervisorDown"), "fingerprint": fingerprint}


class HostLabel(unittest.TestCase):
    def host(self, labels, **options):
        return alertmanager.HostPolicy(**options).host_of(labels)

    def test_port_removed(self):
        self.assertEqual(self.host({"instance": "compute1:9100"}), ("instance", "compute1", ""))
        self.assertEqual(self.host({"instance": "10.0.0.5:9100"}), ("instance", "10.0.0.5", ""))

    def test_first_label_present_wins_even_when_refused(self):
        label, host, problem = self.host({"hypervisor": "a b", "instance": "compute1:9100"})
        self.assertEqual((label, host), ("hypervisor", ""))
        self.assertIn("not a plain host name", problem)

    def test_template_refused_and_quoted_literally(self):
        label, host, problem = self.host({"hypervisor": TEMPLATE})
        self.assertEqual(host, "")
        self.assertIn(repr(TEMPLATE), problem)

    def test_values_native_templating_would_change(self):
        for value in ("1e3", "0x10", "True", "None", "1_0", "1.5"):
            self.assertEqual(self.host({"host": value})[1], "", value)
        self.assertEqual(self.host({"host": "123"})[1], "123")

    def test_not_plain(self):
        for value in ("-x", "a/b", "a b", "x" * 254, "[fd00::5]:9100", "comp\u00e9", "a\nb", "compute1\n", "compute1:9100\n", ""):
            self.assertEqual(self.host({"hypervisor": value, "instance": "other"})[1], "" if value else "other", value)
        self.assertEqual(self.host({"hypervisor": "x" * 253})[1], "x" * 253)

    def test_not_a_string(self):
        self.assertEqual(self.host({"host": ["compute1"]})[1], "")

    def test_no_label(self):
        self.assertEqual(self.host({"job": "node"}), ("", "", "no host label (hypervisor, host, nodename, instance) in the alert"))

    def test_host_map_with_and_without_port(self):
        options = {"host_map": {"cmp1.example.org": "compute1", "[fd00::5]:9100": "compute5"}}
        self.assertEqual(self.host({"instance": "cmp1.example.org:9100"}, **options)[1], "compute1")
        self.assertEqual(self.host({"instance": "[fd00::5]:9100"}, **options)[1], "compute5")
        self.assertEqual(self.host({"instance": "compute2:9100"}, **options)[1], "compute2")

    def test_host_regex(self):
        options = {"host_regex": r"^(?P<host>[^.]+)\.example\.org$"}
        self.assertEqual(self.host({"instance": "cmp7.example.org:9100"}, **options)[1], "cmp7")
        label, host, problem = self.host({"instance": "cmp7.other.org"}, **options)
        self.assertEqual(host, "")
        self.assertIn("does not match host_regex", problem)
        self.assertEqual(self.host({"instance": "cmp7.a.b"}, host_regex=r"^([^.]+)")[1], "cmp7")
        # the regex output is checked too
        self.assertEqual(self.host({"instance": "x y.example.org"}, **options)[1], "")

    def test_bad_options(self):
        for options in ({"host_map": {"a": "b c"}}, {"host_map": ["a"]}, {"host_regex": "("}, {"host_labels": [1]}):
            with self.assertRaises(ValueError):
                alertmanager.HostPolicy(**options)


class Token(unittest.TestCase):
    def test_required(self):
        with self.assertRaisesRegex(ValueError, "no token.*insecure_no_auth"):
            alertmanager.token_of({})
        with self.assertRaisesRegex(ValueError, "no token"):
            alertmanager.token_of({"token": "", "insecure_no_auth": False})

    def test_insecure_no_auth_explicit(self):
        self.assertIsNone(alertmanager.token_of({"insecure_no_auth": True}))
        self.assertIsNone(alertmanager.token_of({"token": "", "insecure_no_auth": "true"}))
        with self.assertRaisesRegex(ValueError, "true or false"):
            alertmanager.token_of({"insecure_no_auth": "maybe"})

    def test_short_token_refused(self):
        with self.assertRaisesRegex(ValueError, "at least 16"):
            alertmanager.token_of({"token": "secret"})

    def test_token_wins_and_numbers_are_text(self):
        self.assertEqual(alertmanager.token_of({"token": 1234567890123456789, "insecure_no_auth": True}), "1234567890123456789")

    def test_main_refuses_to_start_without_token(self):
        with self.assertRaisesRegex(ValueError, "no token"):
            asyncio.run(alertmanager.main(asyncio.Queue(), {"port": 1}))


class Events(unittest.TestCase):
    def test_checked_holds_only_validated_values(self):
        policy = alertmanager.HostPolicy()
        payload = {"alerts": [alert({"instance": "compute1:9100", "evil": TEMPLATE}),
                              alert({"hypervisor": TEMPLATE}, fingerprint=TEMPLATE)]}
        good, bad = alertmanager.events_of(payload, "/alerts", policy)
        self.assertEqual(good["checked"], {"host": "compute1", "label": "instance", "fingerprint": "0123456789abcdef"})
        self.assertEqual((good["host"], good["host_error"]), ("compute1", ""))
        self.assertEqual(bad["checked"], {"host": "", "label": "hypervisor", "fingerprint": ""})
        self.assertEqual(bad["host"], "")
        self.assertIn(repr(TEMPLATE), bad["host_error"])
        # the raw alert is kept for the rule conditions, unchanged
        self.assertEqual(bad["alert"]["labels"]["hypervisor"], TEMPLATE)

    def test_bad_payloads(self):
        policy = alertmanager.HostPolicy()
        for payload in ([], {"status": "firing"}, {"alerts": ["x"]}):
            with self.assertRaises(ValueError):
                alertmanager.events_of(payload, "/alerts", policy)


if __name__ == "__main__":
    unittest.main()
