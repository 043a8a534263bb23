# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Option names follow openstack.cloud so that module_defaults and clouds.yaml work the same way.
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml), or a dict with its settings.
      - In a dict, the values of keys that name a secret (C(password), C(application_credential_secret),
        C(token), C(passcode), C(totp), C(key), C(*_secret), ...), at any depth, are masked in the
        module's results, messages and logs, as C(no_log) options are.
      - When neither O(cloud) nor O(auth) is given, the C(OS_*) environment variables and
        C(OS_CLOUD) are used, as the C(openstack) command line client does.
    type: raw
  auth:
    description:
      - Authentication settings (C(auth_url), C(username), C(password), C(project_name),
        C(user_domain_name), C(project_domain_name), C(application_credential_id), ...).
      - Overrides what O(cloud) sets.
      - Every value of this dict is masked in the module's results, messages and logs.
    type: dict
  auth_type:
    description:
      - Keystone authentication plugin, for example C(password), C(v3applicationcredential) or C(token).
    type: str
  region_name:
    description:
      - Region of the cloud.
    type: str
  interface:
    description:
      - Endpoint interface to use from the service catalog.
    type: str
    choices: [admin, internal, public]
    default: public
    aliases: [endpoint_type]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the API endpoints.
      - When unset, the value from C(clouds.yaml) or C(OS_*) applies (default C(true)).
    type: bool
    aliases: [verify]
  ca_cert:
    description:
      - Path to a CA bundle used to verify the API endpoints.
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - Path to a client certificate for TLS client authentication.
    type: path
    aliases: [cert]
  client_key:
    description:
      - Path to the key of O(client_cert).
    type: path
    aliases: [key]
  api_timeout:
    description:
      - Timeout in seconds for each API call, so a call that hangs never holds up the others.
        The executors read a call that timed out as unknown and read the cloud back, never as
        refused.
    type: int
    default: 60
requirements:
  - python >= 3.8
  - openstacksdk >= 4.0
notes:
  - The collection talks to OpenStack through openstacksdk directly; it does not need the
    openstack.cloud collection at run time.
'''
