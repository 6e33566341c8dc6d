"""A client's network: the one reduction of an IP address every part of the platform uses."""

from __future__ import annotations

import ipaddress
import re

_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", re.ASCII)


def network_of(raw_ip: str | None) -> str | None:
    """IPv4 to its /24, IPv6 to its /48; None for no address or an invalid one. An
    IPv4-mapped IPv6 address is treated as the IPv4 address it carries. (What is kept of a
    request is decided by ``privacy.policy.reduce_ip``, which uses this.)"""
    if not raw_ip:
        return None
    raw_ip = raw_ip.strip()
    if ":" not in raw_ip:  # the common case, without the ipaddress module's cost
        match = _IPV4.fullmatch(raw_ip)
        if match is None or max(map(int, match.groups())) > 255:
            return None
        return f"{int(match[1])}.{int(match[2])}.{int(match[3])}.0/24"
    try:
        address = ipaddress.ip_address(raw_ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return network_of(str(address.ipv4_mapped))
    return str(ipaddress.ip_network(f"{address}/48", strict=False))
