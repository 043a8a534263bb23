# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack connection shared by the collection's modules.

Option names and behaviour follow openstack.cloud, so clouds.yaml, OS_* variables and
``module_defaults`` work as operators expect; openstacksdk is used directly.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback

try:
    import openstack
    from openstack import exceptions as os_exc
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR = None
except ImportError:
    HAS_OPENSTACKSDK = False
    OPENSTACKSDK_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib


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
        api_timeout=dict(type='int'),
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
        module.fail_json(msg='Cannot connect to OpenStack: %s: %s' % (hint, exc), failure=failure)
    return conn
