"""Where a webhook may go, and the one way it is sent there.

The platform must not become a relay into its own network (SSRF). A URL's host is resolved and
every address it resolves to is checked: loopback, private, shared (CGNAT), link-local,
multicast, reserved and unspecified addresses are refused, IPv4 and IPv6, including IPv4
addresses embedded in IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64). The check runs when an
endpoint is saved and again at every delivery, and the delivery connects to the very address
it checked (no second DNS lookup a rebinding server could answer differently); TLS still checks
the certificate against the host name. Redirects are never followed (Standard Webhooks: a 3xx
is a failure). ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` (operators, development, tests) lifts the
address rule only.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from core.settings import setting

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv6 prefixes that embed an IPv4 address in their last 32 bits (RFC 6052 NAT64).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class TargetRefused(ValueError):
    """A webhook URL the platform will not send to; ``str()`` says why, for the member."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for there."""

    scheme: str
    host: str  # as written (for Host, SNI and the certificate check), IDN in A-labels
    port: int
    path: str  # path and query
    address: str


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address`` (None: it may). Pure."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:  # the IPv4 address it reaches decides (::ffff:0:0/96 is reserved)
            return refusal(inner)
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
    )
    for hit, words in checks:
        if hit:
            return words
    if not address.is_global:
        return "an address that is not public"
    return None


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("This is not a valid URL.") from exc
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("The URL must start with https:// (or http://).")
    if parts.username or parts.password:
        raise TargetRefused("The URL must not carry a user name or password.")
    host = parts.hostname or ""
    if not host:
        raise TargetRefused("The URL has no host name.")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise TargetRefused("The host name is not valid.") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def resolve(url: str) -> Target:
    """Check ``url`` and resolve its host to the address a delivery will connect to.

    Raises TargetRefused when the URL is malformed, the host does not resolve, or (unless
    ``WEBHOOKS_ALLOW_PRIVATE_TARGETS``) any address it resolves to is not public: a host with
    one private address among public ones is refused, whichever a later lookup would return.
    """
    scheme, host, port, path = _parse(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"The host name {host} does not resolve.") from exc
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        )
        if not addresses:
            raise TargetRefused(f"The host name {host} does not resolve.")
    if not setting("WEBHOOKS_ALLOW_PRIVATE_TARGETS"):
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise TargetRefused(
                    f"Webhooks cannot be sent to {host}: it points to {reason} ({address})."
                )
    return Target(scheme, host, port, path, str(addresses[0]))


def check_url(url: str) -> str:
    """The URL as it will be stored (stripped), after :func:`resolve` accepted it."""
    resolve(url)
    return url.strip()


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: a status, or None and why not (timeout, refused...)."""

    status: int | None
    excerpt: str


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to the checked address of ``target``; never follows a redirect. Never
    raises for the receiver's failures (they are an Answer without a status)."""
    named = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
    default_port = 443 if target.scheme == "https" else 80
    host_header = named if target.port == default_port else f"{named}:{target.port}"
    send_headers = {
        **headers,
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": "Envoy-Webhooks/1",
    }
    pool: urllib3.HTTPConnectionPool
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=limits,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=limits, retries=False
        )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=send_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            excerpt = response.read(512, decode_content=False)
        finally:
            response.release_conn()
        return Answer(response.status, excerpt.decode("utf-8", "replace")[:300])
    except urllib3.exceptions.TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s")
    except urllib3.exceptions.SSLError:
        return Answer(None, "the TLS handshake failed (certificate or protocol)")
    except urllib3.exceptions.HTTPError as exc:
        return Answer(None, f"could not connect ({type(exc).__name__})")
    finally:
        pool.close()
