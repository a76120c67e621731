"""The network policy (issue 10, case 3): every address that is not globally reachable is refused,
every global one allowed, IPv4 carried in IPv6 judged as the IPv4 it carries; the opt-ins.

The oracle is written here from the IANA special-purpose address registries (not from Python's
``ipaddress`` flags, which the policy uses and which changed between Python releases).
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpwatch.errors import ConfigError
from dumpwatch.netpolicy import NetworkPolicy, host_port_entry, kind_of, split_host_port

STRICT = NetworkPolicy()
OPEN = NetworkPolicy(allow_private_networks=True)

# Not globally reachable (IANA IPv4/IPv6 special-purpose registries), plus multicast.
FORBIDDEN = {
    "unspecified": ["0.0.0.0/32", "::/128"],
    "loopback": ["127.0.0.0/8", "::1/128"],
    "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
    "link-local": ["169.254.0.0/16", "fe80::/10"],
    "multicast": ["224.0.0.0/4", "ff00::/8"],
    "reserved": ["0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
                 "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "100::/64", "2001::/23",
                 "2001:db8::/32", "3fff::/20", "fec0::/10", "64:ff9b:1::/48"],
}
ALL_FORBIDDEN = [ipaddress.ip_network(n) for nets in FORBIDDEN.values() for n in nets]
# Ranges that carry an IPv4 address (judged by it) or that the registries leave unsettled.
CARRIERS = [ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "2002::/16", "64:ff9b::/96", "192.88.99.0/24")]


def in_network(net: ipaddress.IPv4Network | ipaddress.IPv6Network):
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


forbidden_addresses = st.sampled_from([(kind, ipaddress.ip_network(n)) for kind, nets in FORBIDDEN.items()
                                       for n in nets]).flatmap(
    lambda kn: in_network(kn[1]).map(lambda ip: (kn[0], ip)))
ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
global_v4 = ipv4.filter(lambda ip: not any(ip in n for n in ALL_FORBIDDEN + CARRIERS if n.version == 4))
global_v6 = st.integers(0x2000 << 112, (0x4000 << 112) - 1).map(ipaddress.IPv6Address).filter(
    lambda ip: not any(ip in n for n in ALL_FORBIDDEN + CARRIERS if n.version == 6))


@given(forbidden_addresses)
@settings(max_examples=400)
def test_every_forbidden_range_is_refused(kind_ip):
    kind, ip = kind_ip
    reason = STRICT.check_address(ip)
    assert reason and str(ip) in reason and "refused by the network policy" in reason
    if kind != "reserved":  # 0.0.0.0/8 holds 0.0.0.0, 2001::/23 is "private" to Python: the kind may differ
        assert kind_of(ip) == kind


@given(st.one_of(global_v4, global_v6))
@settings(max_examples=400)
def test_every_global_address_is_allowed(ip):
    assert STRICT.check_address(ip) is None


@given(ipv4)
@settings(max_examples=300)
def test_ipv4_carried_in_ipv6_is_judged_as_that_ipv4(ip):
    forms = [ipaddress.IPv6Address(f"::ffff:{ip}"),  # IPv4-mapped
             ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80)),  # 6to4
             ipaddress.IPv6Address(f"64:ff9b::{ip}")]  # NAT64
    refused = STRICT.check_address(ip) is not None
    for form in forms:
        assert (STRICT.check_address(form) is not None) == refused, form


@pytest.mark.parametrize("address, kind", [("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
                                           ("2002:7f00:1::", "loopback"), ("64:ff9b::a00:1", "private"),
                                           ("::ffff:7f00:1", "loopback"), ("::127.0.0.1", "reserved")])
def test_mapped_forms_of_loopback_and_metadata(address, kind):
    assert kind_of(ipaddress.ip_address(address)) == kind
    assert STRICT.check_address(address)


def test_opt_ins():
    assert OPEN.check_address("127.0.0.1") is None and OPEN.check_address("::1") is None
    assert OPEN.check_address("10.1.2.3") is None and OPEN.check_address("::ffff:192.168.1.1") is None
    # private networks opened never open link-local (metadata), multicast or reserved ranges
    for ip in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0", "240.0.0.1"):
        assert OPEN.check_address(ip), ip
    listed = NetworkPolicy.from_table({"allowed_networks": ["10.1.0.0/16", "169.254.169.254/32"]})
    assert listed.check_address("10.1.200.3") is None and listed.check_address("169.254.169.254") is None
    assert listed.check_address("::ffff:10.1.0.9") is None  # the mapped form of a listed address
    assert listed.check_address("10.2.0.1") and listed.check_address("127.0.0.1")
    assert STRICT.for_source(True).check_address("127.0.0.1") is None
    assert OPEN.for_source(False).check_address("127.0.0.1")
    assert OPEN.for_source(None) is OPEN


def test_reason_says_how_to_allow():
    assert "allow_private_networks = true" in STRICT.check_address("127.0.0.1")
    reason = OPEN.check_address("169.254.169.254")
    assert "link-local" in reason and "allowed_networks" in reason and "allow_private_networks" not in reason


def test_check_url_resolves_every_address(monkeypatch):
    def getaddrinfo(host, port, *a, **kw):
        addrs = {"public.example": ["93.184.215.14"], "mixed.example": ["93.184.215.14", "127.0.0.1"]}[host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addrs]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert STRICT.check_url("https://public.example/x") is None
    reason = STRICT.check_url("http://mixed.example/x")
    assert reason.startswith("mixed.example resolves to 127.0.0.1: refused") and "loopback" in reason
    # an IP literal is checked without DNS (the resolver above knows no such name)
    assert "loopback" in STRICT.check_url("http://[::1]:8080/")
    assert "link-local" in STRICT.check_url("http://169.254.169.254/latest/meta-data/")
    assert STRICT.check_url("http://8.8.8.8/") is None


def test_check_url_on_a_name_that_does_not_resolve_raises_the_dns_error(monkeypatch):
    def getaddrinfo(host, *a, **kw):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(socket.gaierror):
        STRICT.check_url("http://nowhere.invalid/")


@pytest.mark.parametrize("table, key", [({"allow_private_networks": "yes"}, "network.allow_private_networks"),
                                        ({"allowed_networks": ["10.1.0.0/33"]}, "network.allowed_networks"),
                                        ({"allowed_networks": "not a network"}, "network.allowed_networks"),
                                        ({"allowed_network": []}, "network.allowed_network")])
def test_configuration_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        NetworkPolicy.from_table(table, path="dumpwatch.toml")
    assert err.value.key == key and str(err.value).startswith("dumpwatch.toml [")


def test_from_config_reads_the_network_table():
    policy = NetworkPolicy.from_config({"network": {"allow_private_networks": True,
                                                    "allowed_networks": "192.0.2.0/24"}})
    assert policy.allow_private_networks and policy.allowed_networks == (ipaddress.ip_network("192.0.2.0/24"),)
    assert NetworkPolicy.from_config({}) == STRICT


@pytest.mark.parametrize("entry, parsed", [("example.org", ("example.org", None)),
                                           ("Example.org:8080", ("example.org", 8080)),
                                           ("[::1]:8443", ("::1", 8443)), ("127.0.0.1:5", ("127.0.0.1", 5)),
                                           ("https://x.example", None), ("x.example/path", None),
                                           ("x.example:0", None), ("x.example:99999", None), ("x.example:", None)])
def test_allowed_domains_entries(entry, parsed):
    assert split_host_port(entry) == parsed


@pytest.mark.parametrize("url, entry", [("http://127.0.0.1:8123/x", "127.0.0.1:8123"),
                                        ("https://paste.example/raw", "paste.example"),
                                        ("http://paste.example:80/", "paste.example"),
                                        ("https://paste.example:80/", "paste.example:80"),
                                        ("http://[::1]:81/", "[::1]:81")])
def test_the_default_allowed_domain_of_a_start_url_keeps_its_port(url, entry):
    assert host_port_entry(url) == entry
