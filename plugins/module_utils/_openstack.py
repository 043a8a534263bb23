# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack connection shared by the collection's modules.

Option names and behaviour follow openstack.cloud, so clouds.yaml, OS_* variables and
``module_defaults`` work as operators expect; openstacksdk is used directly.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import traceback

try:
    import openstack
    from openstack import exceptions as os_exc
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR = None
except ImportError:
    HAS_OPENSTACKSDK = False
    OPENSTACKSDK_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

try:
    from urllib.parse import unquote
except ImportError:  # pragma: no cover - Python 2
    from urllib import unquote

# Keys of a ``cloud`` dict (clouds.yaml settings) whose values are secrets: password,
# application_credential_secret, token, passcode, totp, key, client_secret, ...
SECRET_KEY = re.compile(r'pass|secret|token|totp|(^|_)key$|credential$', re.I)
# scheme://userinfo@ in a URL, or in a message quoting one.
URL_USERINFO = re.compile(r'(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\'"]*)@')
# Query parameters that carry secrets (?token=..., &password=...).
URL_SECRET_PARAM = re.compile(r'(?P<name>[?&][^=&#\s]*(?:token|password|passwd|secret|api_?key)[^=&#\s]*=)'
                              r'[^&#\s\'"]*', re.I)
REDACTED = '********'


def redact_url(text):
    """A URL (or a message quoting URLs) with the credentials it carries taken out.

    In http(s) URLs the whole userinfo goes (a bare user part is often a token); in other
    URIs (libvirt's ``qemu+ssh://user@host/system``) the user stays, as it names the login,
    and only a ``:password`` goes. Secret-looking query values become ``********``.
    """
    if not text or not isinstance(text, str):
        return text

    def userinfo(m):
        scheme, info = m.group('scheme'), m.group('userinfo')
        if scheme.lower() in ('http://', 'https://'):
            return scheme
        return '%s%s@' % (scheme, info.split(':', 1)[0])

    return URL_SECRET_PARAM.sub(lambda m: m.group('name') + REDACTED, URL_USERINFO.sub(userinfo, text))


def url_secrets(value):
    """The passwords and secret query values in the URLs inside ``value`` (any structure)."""
    found = set()
    if isinstance(value, dict):
        for item in value.values():
            found.update(url_secrets(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.update(url_secrets(item))
    elif isinstance(value, str) and '://' in value:
        for m in URL_USERINFO.finditer(value):
            info = m.group('userinfo')
            secret = info.split(':', 1)[1] if ':' in info else (
                info if m.group('scheme').lower() in ('http://', 'https://') else '')
            found.update((secret, unquote(secret)))
        for m in URL_SECRET_PARAM.finditer(value):
            secret = m.group(0)[len(m.group('name')):]
            found.update((secret, unquote(secret)))
    found.discard('')
    return found


def cloud_secrets(cloud):
    """The secret values of a ``cloud`` dict: every value under a secret-looking key, any depth."""
    found = set()
    if isinstance(cloud, dict):
        for key, value in cloud.items():
            if isinstance(value, (dict, list, tuple)):
                found.update(cloud_secrets(value) if not SECRET_KEY.search(str(key))
                             else _leaves(value))
            elif SECRET_KEY.search(str(key)) and value is not None and not isinstance(value, bool):
                found.add(str(value))
    elif isinstance(cloud, (list, tuple)):
        for item in cloud:
            found.update(cloud_secrets(item))
    found.discard('')
    return found


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        out = set()
        for item in value:
            out.update(_leaves(item))
        return out
    return set() if value is None or isinstance(value, bool) else set([str(value)])


class LevellerModule(AnsibleModule):
    """AnsibleModule that keeps the secrets of a ``cloud`` dict and of URLs out of every output.

    ``cloud`` cannot be ``no_log`` (a cloud name would then be masked wherever it appears), so
    the secret values inside it, and the passwords of URLs in any option, are added to
    ``no_log_values`` before anything is logged or returned: Ansible then masks them in
    ``invocation.module_args``, messages, warnings, results and the target's journal/syslog.
    """

    def hide_secrets(self):
        params = getattr(self, 'params', None) or {}
        self.no_log_values.update(cloud_secrets(params.get('cloud')))
        self.no_log_values.update(url_secrets(params))

    def log(self, msg, log_args=None):
        # The first line ("Invoked with ...") is built inside AnsibleModule.__init__, before
        # any caller could add a value to no_log_values.
        self.hide_secrets()
        super(LevellerModule, self).log(remove_values(msg, self.no_log_values),
                                        log_args=remove_values(log_args or {}, self.no_log_values))

    def exit_json(self, **kwargs):
        self.hide_secrets()
        super(LevellerModule, self).exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self.hide_secrets()
        super(LevellerModule, self).fail_json(msg=msg, **kwargs)


def openstack_argument_spec():
    """Connection options, the same names as openstack.cloud."""
    return dict(
        cloud=dict(type='raw'),
        auth=dict(type='dict', no_log=True),
        auth_type=dict(type='str'),
        region_name=dict(type='str'),
        interface=dict(type='str', default='public', choices=['admin', 'internal', 'public'],
                       aliases=['endpoint_type']),
        validate_certs=dict(type='bool', aliases=['verify']),
        ca_cert=dict(type='path', aliases=['cacert']),
        client_cert=dict(type='path', aliases=['cert']),
        client_key=dict(type='path', aliases=['key'], no_log=False),
        api_timeout=dict(type='int', default=60),
    )


class FailureClass(object):
    """The failure classes an operator can act on (returned as ``failure``)."""
    CONFIGURATION = 'configuration'
    UNREACHABLE = 'unreachable'
    PERMISSION = 'permission'
    INCONSISTENT = 'inconsistent'


class LevellerError(Exception):
    """An error with a failure class and a message naming the problem and the fix."""

    def __init__(self, message, failure=FailureClass.CONFIGURATION):
        super(LevellerError, self).__init__(message)
        self.failure = failure


def require_openstacksdk(module):
    if not HAS_OPENSTACKSDK:
        module.fail_json(msg=missing_required_lib('openstacksdk'), exception=OPENSTACKSDK_IMPORT_ERROR,
                         failure=FailureClass.CONFIGURATION)


def classify_sdk_error(exc):
    """Map an openstacksdk/keystoneauth exception to a failure class."""
    name = type(exc).__name__
    if HAS_OPENSTACKSDK:
        if isinstance(exc, os_exc.ForbiddenException):
            return FailureClass.PERMISSION
        if isinstance(exc, os_exc.HttpException) and getattr(exc, 'status_code', None) in (401, 403):
            return FailureClass.PERMISSION
    if name in ('Unauthorized', 'Forbidden', 'AuthorizationFailure'):
        return FailureClass.PERMISSION
    if name in ('ConnectFailure', 'ConnectTimeout', 'DiscoveryFailure', 'EndpointNotFound',
                'SSLError', 'ConnectionError', 'RetriableConnectionFailure', 'ServiceUnavailable',
                'GatewayTimeout'):
        return FailureClass.UNREACHABLE
    if name in ('ConfigException', 'OpenStackConfigException', 'MissingRequiredOptions',
                'MissingAuthPlugin', 'NoMatchingPlugin'):
        return FailureClass.CONFIGURATION
    return FailureClass.UNREACHABLE


def connect(module):
    """Return an openstacksdk Connection built from the module's connection options.

    Fails the module (before any change) with a message naming the problem when the
    configuration is incomplete or the cloud cannot be reached.
    """
    require_openstacksdk(module)
    p = module.params
    if p.get('api_timeout') is not None and p['api_timeout'] < 1:
        module.fail_json(msg='api_timeout must be at least 1 second (got %s): every API call needs a deadline'
                         % p['api_timeout'], failure=FailureClass.CONFIGURATION)
    cloud = p.get('cloud')
    kwargs = {}
    if isinstance(cloud, dict):
        kwargs.update(cloud)
        cloud = None
    for opt, key in (('auth', 'auth'), ('auth_type', 'auth_type'), ('region_name', 'region_name'),
                     ('interface', 'interface'), ('ca_cert', 'cacert'), ('client_cert', 'cert'),
                     ('client_key', 'key'), ('api_timeout', 'api_timeout')):
        if p.get(opt) is not None:
            kwargs[key] = p[opt]
    if p.get('validate_certs') is not None:
        kwargs['verify'] = p['validate_certs']
    try:
        conn = openstack.connect(cloud=cloud, app_name='cloudops.leveller', **kwargs)
        # Authenticate now, so bad credentials fail here and not half-way through a run.
        conn.authorize()
    except Exception as exc:  # openstacksdk raises many unrelated types here
        failure = classify_sdk_error(exc)
        where = 'cloud %r' % cloud if cloud else 'the given auth / OS_* environment'
        if failure == FailureClass.PERMISSION:
            hint = 'check the credentials of %s' % where
        elif failure == FailureClass.CONFIGURATION:
            hint = 'check clouds.yaml / OS_* variables for %s' % where
        else:
            hint = 'check that Keystone of %s is reachable (auth_url, validate_certs, ca_cert)' % where
        module.fail_json(msg='Cannot connect to OpenStack: %s: %s' % (hint, redact_url(str(exc))), failure=failure)
    return conn
