"""The network policy: which addresses a request of dumpwatch may reach.

dumpwatch follows links that the people it watches wrote. A link (or a redirect) to ``127.0.0.1``,
to the LAN, or to a cloud metadata address (``169.254.169.254``) would make the monitor a tool
against its own network, so every request the project makes (the spiders, each link they follow,
each redirect, ``dumpwatch scan URL``; not the webhooks the operator configured) is checked on the
address its host resolves to, and refused when that address is:

- ``unspecified`` (``0.0.0.0``, ``::``), ``loopback`` (``127.0.0.0/8``, ``::1``),
- ``private`` (``10/8``, ``172.16/12``, ``192.168/16``, shared ``100.64/10``, unique-local ``fc00::/7``),
- ``link-local`` (``169.254/16`` with the metadata services, ``fe80::/10``), ``multicast``,
- ``reserved`` (every other range of the IANA special-purpose registries that is not globally
  reachable: documentation, benchmarking, ``240/4``, broadcast, site-local ``fec0::/10``…).

An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:127.0.0.1``, 6to4 ``2002::/16``,
NAT64 ``64:ff9b::/96``) is judged by the IPv4 address it carries. A host name is refused when any
of its addresses is refused (a name with one public and one loopback address is not a public name).

Opt-ins, for tests, the demo and intranet deployments::

    [network]
    allow_private_networks = false        # true: loopback and private ranges are allowed
    allowed_networks = ["10.1.0.0/16"]    # these are allowed whatever their kind (link-local too)

    [[sources]]
    allow_private_networks = true         # this source only (overrides [network])

``allow_private_networks`` never opens link-local, multicast or reserved ranges: a metadata
address must be listed in ``allowed_networks`` by hand. The ``[network]`` table is declared here
(:data:`NETWORK`). This module imports only the standard library and :mod:`dumpwatch.tables`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from dumpwatch.tables import Collector, Key, Section, path_of

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: kinds that ``allow_private_networks = true`` opens
PRIVATE_KINDS = ("loopback", "private")

_net = ipaddress.ip_network
_PRIVATE = tuple(_net(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                   "fc00::/7"))
# Not globally reachable per the IANA special-purpose registries, beyond what ``is_global`` knows
# in every Python 3.11 release (its lists changed between patch releases).
_RESERVED = tuple(_net(n) for n in ("0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
                                    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
                                    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
                                    "3fff::/20", "5f00::/16", "fec0::/10"))
_NAT64 = _net("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, NAT64), or None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def kind_of(ip: IPAddress) -> str | None:
    """The kind of a forbidden address (``loopback``, ``private``…), or None for a global one."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return kind_of(inner)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if any(ip in n for n in _PRIVATE if n.version == ip.version):
        return "private"
    if (ip.is_reserved or ip.is_private or not ip.is_global
            or any(ip in n for n in _RESERVED if n.version == ip.version)):
        return "reserved"
    if isinstance(ip, ipaddress.IPv4Address) and int(ip) == 0xFFFFFFFF:
        return "reserved"  # broadcast
    return None


def parse_ip(text: str) -> IPAddress | None:
    """An IP address written as a URL host or a socket address (brackets, zone id), or None."""
    text = text.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# The [network] table: private networks are refused unless allowed here (or per source).
NETWORK = Section("network", {
    "allow_private_networks": Key("bool", False),
    "allowed_networks": Key("str_list", (), hint='e.g. allowed_networks = ["10.1.0.0/16", "fd00::/8"]'),
})


@dataclass(frozen=True)
class NetworkPolicy:
    """What a request may reach; the default refuses every address that is not globally reachable."""

    allow_private_networks: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    # -- checks ----------------------------------------------------------------------------------
    def check_address(self, ip: IPAddress | str) -> str | None:
        """Why a request to ``ip`` is refused, or None when it is allowed."""
        if isinstance(ip, str):
            parsed = parse_ip(ip)
            if parsed is None:
                return f"{ip!r} is not an IP address"
            ip = parsed
        inner = embedded_ipv4(ip)
        for net in self.allowed_networks:
            if ip in net or (inner is not None and inner in net):
                return None
        kind = kind_of(ip)
        if kind is None or (self.allow_private_networks and kind in PRIVATE_KINDS):
            return None
        hint = ("allow_private_networks = true, or list it in [network] allowed_networks"
                if kind in PRIVATE_KINDS else "list it in [network] allowed_networks")
        shown = f"::ffff:{ip.ipv4_mapped}" if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        article = "an" if kind[0] in "aeiou" else "a"
        return f"refused by the network policy: {shown} is {article} {kind} address (to allow it: {hint})"

    def check_addresses(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why ``host``, resolved to ``addresses``, is refused (the first address refused), or None."""
        for addr in dict.fromkeys(addresses):
            reason = self.check_address(addr)
            if reason:
                return reason if parse_ip(host) is not None else f"{host} resolves to {addr}: {reason}"
        return None

    def check_url(self, url: str) -> str | None:
        """Why ``url`` is refused, or None. The host is resolved (every address it has); an IP
        literal is checked as it is. A name that does not resolve raises :class:`socket.gaierror`:
        the caller reports it as the DNS failure it is."""
        host, port = _host_port(url)
        if host is None:
            return f"{url!r} has no host"
        if parse_ip(host) is not None:
            return self.check_address(host)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return self.check_addresses(host, (info[4][0] for info in infos))

    # -- configuration ---------------------------------------------------------------------------
    @classmethod
    def from_table(cls, table: Mapping[str, Any] | None, where: str = "network",
                   path: str | None = None) -> "NetworkPolicy":
        """The ``[network]`` table (:data:`NETWORK`; absent: the default, strict policy)."""
        values = NETWORK.read(table, path=path, where=where)
        nets = []
        errors = Collector(path)
        for item in values["allowed_networks"]:
            try:
                nets.append(ipaddress.ip_network(item))
            except ValueError as exc:
                errors.add(f"{where}.allowed_networks",
                           f"{item!r} is not a network like \"10.1.0.0/16\" or \"fd00::/8\" ({exc})")
        errors.raise_any()
        return cls(allow_private_networks=values["allow_private_networks"], allowed_networks=tuple(nets))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "NetworkPolicy":
        """The policy of a loaded configuration (``Home.load_config``): its ``[network]`` table."""
        return cls.from_table(config.get("network"), "network", path_of(config))

    def for_source(self, allow_private_networks: bool | None) -> "NetworkPolicy":
        """This policy with a source's own ``allow_private_networks`` (None: the global value)."""
        if allow_private_networks is None or allow_private_networks == self.allow_private_networks:
            return self
        return replace(self, allow_private_networks=allow_private_networks)

    def opened(self) -> "NetworkPolicy":
        """This policy with private networks allowed (``dumpwatch scan --allow-private``)."""
        return self.for_source(True)


DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host_port(entry: str) -> tuple[str, int | None] | None:
    """An ``allowed_domains`` entry: ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as
    ``(host, port or None)``; None when it is not one (a scheme, a path, a bad port)."""
    entry = entry.strip().lower()
    if not entry or any(c in entry for c in "/@?# "):
        return None
    if parse_ip(entry) is not None and not entry.startswith("["):
        return entry, None  # a bare IPv6 address
    parts = urlsplit("//" + entry)
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port == 0 or (entry.rstrip("]").endswith(":") and port is None):
        return None
    return parts.hostname, port


def host_port_entry(url: str) -> str:
    """The ``allowed_domains`` entry of a URL: its host, with its port unless it is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == DEFAULT_PORTS.get(parts.scheme.lower()):
        return shown
    return f"{shown}:{port}"


def _host_port(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or DEFAULT_PORTS.get(parts.scheme.lower())
    return parts.hostname, port
