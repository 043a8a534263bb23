# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fencing: read and cut the power of a compute host through its BMC.

A fence driver is one small class per BMC protocol behind one interface (:class:`Fence`):
``power_state()`` reads ``'on'``, ``'off'`` or ``'unknown'``; ``power_off()`` asks for a hard
power off (never a reboot, never a graceful shutdown that the host could ignore);
``describe()`` names the BMC for messages and never holds the password. Every BMC or library
error becomes a :class:`FenceError` whose text holds no secret.

- :class:`RedfishFence` goes through ``sushy``, OpenStack's Redfish library, the way Ironic
  uses it (``ComputerSystem.Reset`` with ``ForceOff``);
- :class:`IpmiFence` goes through ``pyghmi`` (chassis power off).

:func:`make_fence` validates a ``fence`` option (a dict) and builds the driver. Both libraries
are optional: their absence only matters once a ``fence`` option names their driver.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import inspect
import os
import re
import threading
import traceback

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import FailureClass, LevellerError

try:
    import sushy
    from sushy import exceptions as sushy_exc
    HAS_SUSHY = True
    SUSHY_IMPORT_ERROR = None
except ImportError:
    HAS_SUSHY = False
    SUSHY_IMPORT_ERROR = traceback.format_exc()

try:
    from pyghmi.ipmi import command as ipmi_command
    HAS_PYGHMI = True
    PYGHMI_IMPORT_ERROR = None
except ImportError:
    HAS_PYGHMI = False
    PYGHMI_IMPORT_ERROR = traceback.format_exc()

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported
    from urlparse import urlsplit

DRIVERS = ('redfish', 'ipmi')
# The pip package each driver needs, and where its import error is kept.
REQUIREMENTS = {'redfish': 'sushy', 'ipmi': 'pyghmi'}
FENCE_KEYS = ('driver', 'address', 'port', 'username', 'password', 'system_id', 'verify', 'ca', 'fence_timeout')
REDFISH_ONLY = ('system_id', 'verify', 'ca')
DEFAULT_FENCE_TIMEOUT = 60
MAX_FENCE_TIMEOUT = 3600
IPMI_PORT = 623
SYSTEMS_PREFIX = '/redfish/v1/Systems/'
# One Redfish request never waits longer than this, whatever fence_timeout says: the power
# state is polled, so a slow answer is better retried than waited for.
REDFISH_REQUEST_TIMEOUT = 30
REDACTED = '********'


class FenceError(LevellerError):
    """A BMC could not be read or refused an order, or a ``fence`` option is wrong.

    ``failure`` is a :class:`~._openstack.FailureClass` value; ``exception`` holds the import
    traceback when a library is missing (for ``fail_json(exception=...)``).
    """

    def __init__(self, message, failure=FailureClass.UNREACHABLE, exception=None):
        super(FenceError, self).__init__(message, failure)
        self.exception = exception


def scrub(text, secrets):
    """``text`` with every secret in ``secrets`` replaced by ********."""
    text = '%s' % (text,)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def missing_library(driver):
    """(pip package, import traceback) when the library of ``driver`` is missing, else None."""
    if driver == 'redfish' and not HAS_SUSHY:
        return REQUIREMENTS['redfish'], SUSHY_IMPORT_ERROR
    if driver == 'ipmi' and not HAS_PYGHMI:
        return REQUIREMENTS['ipmi'], PYGHMI_IMPORT_ERROR
    return None


class Fence(object):
    """The interface of a fence driver: one BMC that reads and cuts the power of one host."""

    driver = None

    def __init__(self, address, username, password, port=None, fence_timeout=DEFAULT_FENCE_TIMEOUT):
        self.address = address
        self.username = username
        self._password = password
        self.port = port
        self.fence_timeout = fence_timeout

    def power_state(self):
        """'on', 'off' or 'unknown', read from the BMC now; FenceError when it cannot be read."""
        raise NotImplementedError

    def power_off(self):
        """Ask the BMC for a hard power off (never a reboot); returns at once, without waiting."""
        raise NotImplementedError

    def describe(self):
        """The BMC in words, for messages: driver, address, user; never the password."""
        raise NotImplementedError

    def close(self):
        """Let go of the BMC connection (a Redfish session is closed); safe to call twice."""

    def _error(self, doing, exc, failure=FailureClass.UNREACHABLE):
        """A FenceError for ``exc`` met while ``doing``, with the password scrubbed out."""
        text = '%s' % (exc,)
        if not text.strip() or text == 'None':
            text = 'no answer from the BMC'  # pyghmi times out with an empty IpmiException
        return FenceError(scrub('%s: cannot %s: %s: %s' % (self.describe(), doing, type(exc).__name__, text),
                                [self._password]), failure)

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.describe())


class RedfishFence(Fence):
    """A Redfish BMC through sushy; ``system_path`` is /redfish/v1/Systems/<id>."""

    driver = 'redfish'

    def __init__(self, base_url, username, password, system_path, verify=True,
                 fence_timeout=DEFAULT_FENCE_TIMEOUT):
        super(RedfishFence, self).__init__(base_url, username, password, fence_timeout=fence_timeout)
        self.base_url = base_url
        self.system_path = system_path
        self.verify = verify
        self._conn = None

    def describe(self):
        tls = ''
        if self.base_url.startswith('https:') and self.verify is False:
            tls = ', certificate not verified'
        elif isinstance(self.verify, str):
            tls = ', CA %s' % self.verify
        return 'redfish BMC %s system %s (user %s%s)' % (self.base_url, self.system_path, self.username, tls)

    def _connect(self):
        if self._conn is None:
            if not HAS_SUSHY:
                raise FenceError(_missing_text('redfish'), FailureClass.CONFIGURATION, SUSHY_IMPORT_ERROR)
            kwargs = {'verify': self.verify}
            # Fail fast and let the caller's poll retry: sushy would otherwise retry a refused
            # connection 10 times, 3 s apart, inside each call. Older sushy lacks some of these.
            wanted = {'server_side_retries': 2, 'server_side_retries_delay': 1,
                      'read_timeout': min(REDFISH_REQUEST_TIMEOUT, max(1, int(self.fence_timeout))),
                      'connect_timeout': min(10, max(1, int(self.fence_timeout)))}
            try:
                accepted = inspect.signature(sushy.Sushy.__init__).parameters
            except (TypeError, ValueError):  # pragma: no cover - not introspectable
                accepted = {}
            kwargs.update((k, v) for k, v in wanted.items() if k in accepted)
            try:
                self._conn = sushy.Sushy(self.base_url, username=self.username, password=self._password, **kwargs)
            except Exception as exc:
                raise self._redfish_error('connect', exc)
        return self._conn

    def _system(self):
        conn = self._connect()
        try:
            return conn.get_system(self.system_path)
        except Exception as exc:
            raise self._redfish_error('read %s' % self.system_path, exc)

    def _redfish_error(self, doing, exc):
        failure = FailureClass.UNREACHABLE
        hint = ''
        if HAS_SUSHY and isinstance(exc, sushy_exc.AccessError):
            failure = FailureClass.PERMISSION
            hint = ' (check fence.username and fence.password, and that the account may reset the system)'
        elif HAS_SUSHY and isinstance(exc, sushy_exc.ResourceNotFoundError):
            failure = FailureClass.CONFIGURATION
            hint = ' (check fence.system_id: GET %s/redfish/v1/Systems lists the systems)' % self.base_url
        err = self._error(doing, exc, failure)
        if hint:
            err = FenceError(str(err) + hint, failure)
        return err

    def power_state(self):
        system = self._system()
        state = system.power_state
        if state is None:
            return 'unknown'
        if state == sushy.POWER_STATE_OFF:
            return 'off'
        # On, PoweringOn, PoweringOff, Paused: the host still has power.
        return 'on'

    def power_off(self):
        system = self._system()
        try:
            system.reset_system(sushy.RESET_FORCE_OFF)
        except Exception as exc:
            if isinstance(exc, sushy_exc.InvalidParameterValueError):
                raise FenceError(scrub('%s: the BMC does not offer ForceOff (%s); no other reset type is used, '
                                       'since a reboot or a graceful shutdown does not fence a host'
                                       % (self.describe(), exc), [self._password]), FailureClass.CONFIGURATION)
            raise self._redfish_error('power off (ForceOff)', exc)

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            # sushy closes its Redfish session when the root object goes.
            del conn


class IpmiFence(Fence):
    """An IPMI BMC through pyghmi (IPMI 2.0 over LAN, RMCP+)."""

    driver = 'ipmi'
    # The shortest deadline of one pyghmi call (fence_timeout when longer).
    min_call_seconds = 10.0

    def __init__(self, address, username, password, port=IPMI_PORT, fence_timeout=DEFAULT_FENCE_TIMEOUT):
        super(IpmiFence, self).__init__(address, username, password, port=port, fence_timeout=fence_timeout)
        self._cmd = None

    def describe(self):
        return 'ipmi BMC %s port %s (user %s)' % (self.address, self.port, self.username)

    def _bounded(self, doing, call):
        """Run one pyghmi call with a hard deadline (fence_timeout, at least min_call_seconds).

        pyghmi retries inside its calls and has no timeout of its own: a silent BMC held a call
        for 30 s on the test bed, and a second login to a BMC whose first one failed can wait for
        ever. The call runs in a daemon thread; past the deadline it is abandoned and the BMC
        counts as unreachable.
        """
        box = {}

        def work():
            try:
                box['value'] = call()
            except Exception as exc:  # handed back to the caller below
                box['error'] = exc
        worker = threading.Thread(target=work, name='leveller-ipmi')
        worker.daemon = True
        worker.start()
        limit = max(self.min_call_seconds, float(self.fence_timeout))
        worker.join(limit)
        if worker.is_alive():
            self._cmd = None
            self._forget_login()
            raise self._error(doing, TimeoutError('no answer within %g s' % limit), FailureClass.UNREACHABLE)
        if 'error' in box:
            raise box['error']
        return box.get('value')

    def _forget_login(self):
        """Drop pyghmi's record of a login to this BMC (pyghmi 1.6 keeps a failed one, and every
        later login to the same BMC from this process then waits on it for ever)."""
        try:
            from pyghmi.ipmi.private import session as ipmi_session
            pending = ipmi_session.Session.initting_sessions
            for key in list(pending):
                if isinstance(key, tuple) and len(key) >= 4 and key[0] == self.address and key[3] == self.port:
                    pending.pop(key, None)
        except Exception:  # an older or newer pyghmi without this table: nothing to forget
            pass

    def _connect(self):
        if self._cmd is None:
            if not HAS_PYGHMI:
                raise FenceError(_missing_text('ipmi'), FailureClass.CONFIGURATION, PYGHMI_IMPORT_ERROR)
            self._forget_login()
            try:
                self._cmd = self._bounded('log in', lambda: ipmi_command.Command(
                    bmc=self.address, userid=self.username, password=self._password, port=self.port))
            except FenceError:
                raise
            except Exception as exc:
                raise self._ipmi_error('log in', exc)
            finally:
                self._forget_login()
        return self._cmd

    def _ipmi_error(self, doing, exc):
        text = '%s' % (exc,)
        failure = FailureClass.UNREACHABLE
        if re.search(r'(?i)unauthori[sz]ed|password|user ?name|privilege|rakp', text):
            failure = FailureClass.PERMISSION
            return FenceError(str(self._error(doing, exc, failure)) + ' (check fence.username and fence.password)',
                              failure)
        # A broken session is not reused: the next call logs in again.
        self._cmd = None
        return self._error(doing, exc, failure)

    def power_state(self):
        cmd = self._connect()
        try:
            answer = self._bounded('read the power state', cmd.get_power)
        except FenceError:
            raise
        except Exception as exc:
            raise self._ipmi_error('read the power state', exc)
        state = (answer or {}).get('powerstate')
        if state in ('on', 'off'):
            return state
        return 'unknown'

    def power_off(self):
        cmd = self._connect()
        try:
            # 'off' is chassis power down (hard); 'shutdown' would be the soft, ACPI one.
            self._bounded('power off', lambda: cmd.set_power('off', wait=False))
        except FenceError:
            raise
        except Exception as exc:
            raise self._ipmi_error('power off', exc)

    def close(self):
        cmd, self._cmd = self._cmd, None
        if cmd is not None:
            try:
                cmd.ipmi_session.logout()
            except Exception:  # the session may already be gone; closing must not fail a run
                pass


def _missing_text(driver):
    pkg = REQUIREMENTS[driver]
    return ('fence.driver=%s needs the Python library %s on the host that runs the module: '
            'pip install %s (or add it to the execution environment)' % (driver, pkg, pkg))


# -- the fence option ---------------------------------------------------------------

def fence_argument_spec():
    """Suboptions for a module's ``fence`` option (every default is applied by make_fence)."""
    return dict(
        driver=dict(type='str', choices=list(DRIVERS)),
        address=dict(type='str'),
        port=dict(type='int'),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        system_id=dict(type='str'),
        verify=dict(type='bool'),
        ca=dict(type='path'),
        fence_timeout=dict(type='int'),
    )


def fence_secrets(spec):
    """The values of a ``fence`` option that must never be shown (for no_log_values)."""
    if not isinstance(spec, dict):
        return set()
    return set(v for k, v in spec.items() if v and isinstance(v, str) and re.search(r'(?i)pass|secret|token|key', k))


def _bad(field, problem, secrets=()):
    return FenceError(scrub('fence.%s %s' % (field, problem), secrets), FailureClass.CONFIGURATION)


def _text(spec, field, secrets, required=True):
    value = spec.get(field)
    if value is None:
        if required:
            raise _bad(field, 'is required: give it in the fence option', secrets)
        return None
    if not isinstance(value, str) or not value.strip():
        shown = '' if field == 'password' else ' (got %r)' % (value,)
        raise _bad(field, 'must be a non-empty string%s' % shown, secrets)
    return value


def _bool(spec, field, default, secrets):
    value = spec.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    words = {'yes': True, 'true': True, 'on': True, '1': True, 'no': False, 'false': False, 'off': False, '0': False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise _bad(field, 'must be true or false (got %r)' % (value,), secrets)


def _number(spec, field, default, low, high, secrets, integer=True):
    value = spec.get(field)
    if value is None:
        return default
    number = None
    if not isinstance(value, bool):
        try:
            number = int(value) if integer else float(value)
            if integer and isinstance(value, float) and value != number:
                number = None
        except (TypeError, ValueError):
            number = None
    if number is None or not low <= number <= high:
        raise _bad(field, 'must be a%s number from %s to %s (got %r)' % (
            ' whole' if integer else '', low, high, value), secrets)
    return number


def _redfish_url(address, port, secrets):
    """https://host[:port] from fence.address (a host, host:port or URL) and fence.port."""
    if '://' in address:
        parts = urlsplit(address)
    else:
        parts = urlsplit('https://' + address)
    if '@' in (parts.netloc or ''):
        # Never echo it: the part before '@' is a password as often as not.
        raise _bad('address', 'must not carry credentials (user:password@...): give them as fence.username '
                   'and fence.password', secrets | {address})
    if parts.scheme not in ('http', 'https'):
        raise _bad('address', 'must be a host name, host:port or an http(s):// URL of the BMC (got %r)'
                   % address, secrets)
    if parts.path not in ('', '/') or parts.query or parts.fragment:
        raise _bad('address', 'must name the BMC only, without a path (got %r): the Redfish system goes in '
                   'fence.system_id' % address, secrets)
    try:
        url_port = parts.port
        host = parts.hostname
    except ValueError:
        raise _bad('address', 'has a bad port (got %r)' % address, secrets)
    if not host:
        raise _bad('address', 'names no host (got %r)' % address, secrets)
    if url_port is not None and port is not None and url_port != port:
        raise _bad('port', 'is %s but fence.address says port %s: give the port once' % (port, url_port), secrets)
    port = port if port is not None else url_port
    shown_host = '[%s]' % host if ':' in host else host
    return '%s://%s%s' % (parts.scheme, shown_host, ':%d' % port if port is not None else '')


def make_fence(spec):
    """A fence driver from a ``fence`` option (a dict); FenceError naming the field and the fix.

    Keys: driver (redfish|ipmi), address, port, username, password, fence_timeout (seconds,
    default 60), and for redfish only system_id (required: an id or /redfish/v1/Systems/<id>),
    verify (default true) and ca (a CA bundle file). Unknown keys are errors; absent keys
    may also be None (as Ansible fills in unset suboptions).
    """
    if not isinstance(spec, dict):
        raise FenceError('fence must be a dict with driver, address, username, password (got %s)'
                         % type(spec).__name__, FailureClass.CONFIGURATION)
    secrets = fence_secrets(spec)
    unknown = sorted(k for k in spec if k not in FENCE_KEYS)
    if unknown:
        # Key names only: a mistyped 'passwd' key holds a password.
        raise FenceError(scrub('fence: unknown key(s) %s; the keys are %s' % (
            ', '.join(str(k) for k in unknown), ', '.join(FENCE_KEYS)), secrets), FailureClass.CONFIGURATION)
    driver = spec.get('driver')
    if driver not in DRIVERS:
        raise _bad('driver', 'must be one of %s (got %r)' % (', '.join(DRIVERS), driver), secrets)
    address = _text(spec, 'address', secrets)
    if re.search(r'\s', address):
        raise _bad('address', 'must not contain spaces (got %r)' % address, secrets)
    username = _text(spec, 'username', secrets)
    password = _text(spec, 'password', secrets)
    secrets = secrets | {password}
    port = _number(spec, 'port', None, 1, 65535, secrets)
    timeout = _number(spec, 'fence_timeout', DEFAULT_FENCE_TIMEOUT, 1, MAX_FENCE_TIMEOUT, secrets, integer=False)

    if driver == 'ipmi':
        given = [k for k in REDFISH_ONLY if spec.get(k) is not None]
        if given:
            raise _bad(given[0], 'is only used with driver redfish: remove it for driver ipmi', secrets)
        if '://' in address or '@' in address or '/' in address:
            raise _bad('address', 'must be the host name or IP address of the IPMI BMC, without a scheme, '
                       'path or credentials (the port goes in fence.port)', secrets)
        problem = missing_library('ipmi')
        if problem:
            raise FenceError(_missing_text('ipmi'), FailureClass.CONFIGURATION, problem[1])
        return IpmiFence(address, username, password, port=port or IPMI_PORT, fence_timeout=timeout)

    system_id = _text(spec, 'system_id', secrets)
    if system_id.startswith(SYSTEMS_PREFIX):
        system_path = system_id.rstrip('/')
    elif '/' in system_id:
        raise _bad('system_id', 'must be a system id or %s<id> (got %r)' % (SYSTEMS_PREFIX, system_id), secrets)
    else:
        system_path = SYSTEMS_PREFIX + system_id
    if system_path == SYSTEMS_PREFIX.rstrip('/'):
        raise _bad('system_id', 'names no system (got %r)' % system_id, secrets)
    verify = _bool(spec, 'verify', True, secrets)
    ca = spec.get('ca')
    if ca is not None:
        if not isinstance(ca, str) or not ca:
            raise _bad('ca', 'must be the path of a CA bundle file (got %r)' % (ca,), secrets)
        if not verify:
            raise _bad('ca', 'is set but fence.verify is false: drop one of them', secrets)
        if not os.path.isfile(ca):
            raise _bad('ca', 'names no file: %s (a PEM CA bundle on the host that runs the module)' % ca, secrets)
        verify = ca
    base_url = _redfish_url(address, port, secrets)
    problem = missing_library('redfish')
    if problem:
        raise FenceError(_missing_text('redfish'), FailureClass.CONFIGURATION, problem[1])
    return RedfishFence(base_url, username, password, system_path, verify=verify, fence_timeout=timeout)
