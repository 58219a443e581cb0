"""How the portal knows a client by its network address, in one place.

Two uses, two widths, one rule for each — never recomputed elsewhere:

    client_key(address)              what sign-in throttles count by: an IPv4 address as it is,
                                     an IPv6 client as its /64 (one household or phone gets a whole
                                     /64; counting single addresses would let it rotate past limits)
    device_descriptor(address, ua)   what risk control knows a device by (kept only as a keyed
                                     hash): the address's /24 or /64 network and the user agent,
                                     so a phone moving within its carrier's block stays one device
"""

from __future__ import annotations

import ipaddress

MAX_USER_AGENT = 200


def _network(address: str, v4_prefix: int, v6_prefix: int) -> str | None:
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return None
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def client_key(address: str) -> str:
    """The address the throttles count by (anything that is not an address is kept as given)."""
    network = _network(address, 32, 64)
    if network is None:
        return str(address)
    return network.removesuffix("/32")


def device_descriptor(address: str, user_agent: str) -> str:
    """`<network>|<user agent>`, or "" when neither is known (the command line)."""
    network = _network(address, 24, 64) or ""
    agent = str(user_agent or "")[:MAX_USER_AGENT]
    return f"{network}|{agent}" if network or agent else ""
