# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Reading load from Prometheus: one instant query per metric for all hosts.
    DOCUMENTATION = r'''
options:
  prometheus_url:
    description:
      - Base URL of the Prometheus HTTP API, with its route prefix if it has one, for example
        V(http://prometheus:9090) or V(https://monitor.example.org/prometheus).
      - A full query URL as seed 000 used it (V(http://prometheus:9090/api/v1/query)) works too.
      - Credentials in the URL (V(https://user:password@prometheus:9090)) are sent as HTTP basic
        authentication unless O(prometheus_username) or O(prometheus_token) is set. They are never
        echoed; messages and the snapshot's C(sources.prometheus.url) show the URL without them,
        and the password is masked in the module's results and logs.
      - Required when O(sources) contains V(prometheus).
      - Falls back to the environment variable E(LEVELLER_PROMETHEUS_URL), or if that is unset or
        empty, E(PROMETHEUS_QUERY_URL).
    type: str
  query_cpu:
    description:
      - PromQL instant query returning, for every host, its CPU busy share as a ratio 0..1.
      - Each series must carry O(prometheus_host_label).
      - The default works with node-exporter.
      - Falls back to the environment variable E(PROMETHEUS_CPU_USED).
    type: str
    default: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))
  query_memory:
    description:
      - PromQL instant query returning, for every host, its used memory share as a ratio 0..1.
      - The default works with node-exporter.
      - Falls back to the environment variable E(PROMETHEUS_MEM_USED).
    type: str
    default: 1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)
  query_last_sample:
    description:
      - PromQL instant query returning, per host, the Unix time of its newest raw sample. Only
        used with O(staleness).
      - Defaults to C(max by (<prometheus_host_label>) (timestamp(node_memory_MemAvailable_bytes))).
    type: str
  staleness:
    description:
      - Hosts whose newest sample (O(query_last_sample)) is older than this many seconds count
        as hosts without load.
      - V(0) turns the check (and its query) off. Prometheus itself drops series older than its
        lookback delta (5 minutes by default).
    type: int
    default: 180
  prometheus_host_label:
    description:
      - Label of the series of O(query_cpu) and O(query_memory) that names the host.
      - node-exporter's is V(instance) (V(compute1:9100)); some setups add V(host), V(fqdn) or
        V(hypervisor) labels.
    type: str
    default: instance
  prometheus_host_pattern:
    description:
      - Regular expression with at most one group, applied to the label value; the group (or the
        whole match) is the host name. The default keeps what is before the first C(.) or C(:),
        so V(compute1.example.org:9100) becomes V(compute1).
      - The result is compared exactly with Nova's compute service host and with the
        hypervisor host name; never by substring.
      - Set to an empty string to use the label value as it is.
    type: str
    default: '^(\[[^\]]+\]|[^.:]+)'
  prometheus_host_map:
    description:
      - Explicit map from label values to Nova host names; wins over O(prometheus_host_pattern).
    type: dict
  query_instance_cpu:
    description:
      - Optional PromQL instant query returning the CPU use of every instance, one series per
        instance labelled with its Nova UUID (O(prometheus_instance_label)), in the unit
        O(instance_cpu_unit).
      - For example with Ceilometer's Prometheus exporter
        C(sum by (resource) (rate(ceilometer_cpu[5m])) / 1e9) and O(instance_cpu_unit=cores).
    type: str
  instance_cpu_unit:
    description:
      - What O(query_instance_cpu) returns. V(ratio) is the busy share 0..1 of the instance's own
        vCPUs; V(cores) is CPU seconds per second, divided here by the vCPUs of the instance's
        flavor (from Nova), so the query needs no flavor data.
    type: str
    choices: [ratio, cores]
    default: ratio
  query_instance_memory:
    description:
      - Optional PromQL instant query returning the memory use of every instance, labelled with
        its Nova UUID, in the unit O(instance_memory_unit).
      - For example C(max by (resource) (ceilometer_memory_usage)) and O(instance_memory_unit=mb).
    type: str
  instance_memory_unit:
    description:
      - What O(query_instance_memory) returns. V(ratio) is the used share 0..1 of the instance's
        own memory; V(mb) is MB used, divided here by the RAM of the instance's flavor.
    type: str
    choices: [ratio, mb]
    default: ratio
  prometheus_instance_label:
    description:
      - Label carrying the Nova instance UUID in the per-instance series.
    type: str
    default: resource
  prometheus_timeout:
    description:
      - Timeout in seconds of each Prometheus request.
    type: int
    default: 10
  prometheus_validate_certs:
    description:
      - Whether to verify the TLS certificate of Prometheus.
    type: bool
    default: true
  prometheus_ca_cert:
    description:
      - CA bundle to verify the TLS certificate of Prometheus.
    type: path
  prometheus_token:
    description:
      - Bearer token sent to Prometheus (for example through an authenticating proxy).
    type: str
  prometheus_username:
    description:
      - User name for HTTP basic authentication to Prometheus.
    type: str
  prometheus_password:
    description:
      - Password for HTTP basic authentication to Prometheus.
    type: str
'''
