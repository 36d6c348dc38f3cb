"""SSRF guard for channel base URLs: which URLs may be saved, which addresses may be dialled.

A channel's base URL is operator input that the gateway connects to with a provider key,
so a wrong or hostile URL must not reach the cloud metadata service, the database or
anything else on the private network. Three layers:

1. Saving (`validate_base_url`): http/https only, no credentials in the URL, and the host
   (an IP literal or every address it resolves to right now) must be public, unless the
   channel sets `allow_private_network` (the demo's loopback simulator does).
2. Connecting (`safe_client_session` for aiohttp, `safe_session` for requests): DNS is
   resolved again at call time, every address is vetted, and the connection goes to a
   vetted address, so DNS rebinding between save and call does not help an attacker.
   aiohttp never passes IP-literal hosts to a resolver, so `safe_client_session` also runs
   `guard_url` on every request URL through a trace hook (`ssrf_trace_config`).
3. No redirects: every upstream call passes `allow_redirects=False` (aiohttp and
   requests), so a public upstream cannot bounce the gateway to a private address.

Cloud metadata endpoints are refused even when private networks are allowed, and so are
unspecified, broadcast and multicast addresses, which are never a valid upstream.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

ALLOWED_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services: AWS/GCP/Azure/OpenStack, AWS IPv6, ECS tasks, Alibaba Cloud, Oracle.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.azure.internal"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURLError(OSError):
    """The URL or an address it resolves to may not be connected to.

    An OSError, so aiohttp and urllib3 report it like any other failed connection.
    """


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to (mapped, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why this address may not be dialled, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner, allow_private=allow_private)
            return f"{problem} (embedded in {ip})" if problem else None
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast or (
        isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255")
    ):
        return f"{ip} is a multicast or broadcast address"
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if allow_private or (ip.is_global and not site_local):
        return None
    for attr, label in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_site_local", "site-local"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr, False):
            return f"{ip} is a {label} address"
    return f"{ip} is not a public address"


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver returns for host (IP literals included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IPAddress] = {}
    for info in infos:
        text = str(info[4][0])  # the address is a str for every family
        seen.setdefault(text, ipaddress.ip_address(text.split("%", 1)[0]))
    return list(seen.values())


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def vetted_addresses(
    host: str, port: int, *, allow_private: bool = False, resolver: Callable | None = None
) -> list[str]:
    """Resolve host and return its addresses if every one of them may be dialled.

    Raises UnsafeURLError if the host does not resolve or any address is refused: a name
    that resolves to one public and one private address is refused as a whole.
    """
    host = (host or "").strip().rstrip(".").lower()
    if not host:
        raise UnsafeURLError("the URL has no host")
    if host in METADATA_HOSTNAMES:
        raise UnsafeURLError(f"{host} is a cloud metadata host")
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = (resolver or resolve_host)(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeURLError(f"{host} does not resolve ({exc.__class__.__name__})") from None
    if not addresses:
        raise UnsafeURLError(f"{host} does not resolve")
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem:
            raise UnsafeURLError(f"{host}: {problem}")
    return [str(ip) for ip in addresses]


def _split(url: str):
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURLError(f"the scheme must be http or https, not {parts.scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("credentials in the URL are not allowed; set the channel's key instead")
    if not parts.hostname:
        raise UnsafeURLError("the URL has no host")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def guard_url(url: str, *, allow_private: bool = False) -> None:
    """Per-request check without DNS: scheme, credentials, IP literals and metadata hosts.

    Hostnames are vetted at connect time by SafeResolver / PinnedAdapter.
    """
    host, _ = _split(url)
    if host.rstrip(".").lower() in METADATA_HOSTNAMES:
        raise UnsafeURLError(f"{host} is a cloud metadata host")
    literal = _literal(host)
    if literal is not None:
        problem = address_problem(literal, allow_private=allow_private)
        if problem:
            raise UnsafeURLError(problem)


def validate_base_url(url: str, *, allow_private: bool = False, resolver: Callable | None = None) -> None:
    """Save-time check of a channel base URL; raises UnsafeURLError with a readable reason.

    A hostname that does not resolve from here is accepted (the upstream may only be
    reachable from the relay's network); connect-time pinning still vets it there.
    """
    host, port = _split(url)
    guard_url(url, allow_private=allow_private)
    if _literal(host) is not None:
        return
    try:
        addresses = (resolver or resolve_host)(host, port)
    except (OSError, UnicodeError):
        return
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem:
            raise UnsafeURLError(f"{host} resolves to a refused address: {problem}")


class SafeResolver(AbstractResolver):
    """aiohttp resolver that only returns vetted addresses (refuses the host otherwise).

    Use with `aiohttp.TCPConnector(resolver=SafeResolver(allow_private=...))`: one
    connector for public channels, one for channels with `allow_private_network`.
    """

    def __init__(self, *, allow_private: bool = False, resolver: AbstractResolver | None = None):
        self.allow_private = allow_private
        self._resolver = resolver or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() in METADATA_HOSTNAMES:
            raise UnsafeURLError(f"{host} is a cloud metadata host")
        results = await self._resolver.resolve(host, port, family)
        for entry in results:
            problem = address_problem(ipaddress.ip_address(entry["host"]), allow_private=self.allow_private)
            if problem:
                raise UnsafeURLError(f"{host}: {problem}")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def safe_connector(*, allow_private: bool = False, **kwargs) -> aiohttp.TCPConnector:
    """A TCPConnector whose every connection goes to a vetted address."""
    return aiohttp.TCPConnector(resolver=SafeResolver(allow_private=allow_private), **kwargs)


class UpstreamRefused(UnsafeURLError, aiohttp.ClientOSError):
    """Raised by `ssrf_trace_config` before connecting: an aiohttp ClientError like any other."""


def ssrf_trace_config(*, allow_private: bool = False) -> aiohttp.TraceConfig:
    """aiohttp trace hook that runs `guard_url` on every request URL, IP literals included.

    aiohttp dials IP-literal hosts without asking the resolver, so `safe_connector` alone
    cannot see them; this hook refuses them before connecting.
    """

    async def check(session, context, params) -> None:
        try:
            guard_url(str(params.url), allow_private=allow_private)
        except UnsafeURLError as exc:
            raise UpstreamRefused(f"refused by the SSRF guard: {exc}") from None

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(check)
    return trace


def safe_client_session(
    *, allow_private: bool = False, connector_kwargs=None, **kwargs
) -> aiohttp.ClientSession:
    """An aiohttp ClientSession for upstream calls: vetted, pinned addresses and checked URLs.

    Still pass `allow_redirects=False` on every request.
    """
    return aiohttp.ClientSession(
        connector=safe_connector(allow_private=allow_private, **(connector_kwargs or {})),
        trace_configs=[ssrf_trace_config(allow_private=allow_private), *kwargs.pop("trace_configs", [])],
        **kwargs,
    )


class _PinnedConnectionMixin:
    """Resolves and vets the host itself, then connects to a vetted address.

    TLS still verifies the certificate against the hostname (SNI and Host header unchanged).
    """

    allow_private = False

    def _new_conn(self):
        try:
            addresses = vetted_addresses(self._dns_host, self.port, allow_private=self.allow_private)
        except UnsafeURLError as exc:
            raise NewConnectionError(self, f"refused by the SSRF guard: {exc}") from None
        last: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address
                )
            except OSError as exc:
                last = exc
                continue
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")


def _pools(allow_private: bool):
    http_conn = type(
        "PinnedHTTPConnection", (_PinnedConnectionMixin, HTTPConnection), {"allow_private": allow_private}
    )
    https_conn = type(
        "PinnedHTTPSConnection", (_PinnedConnectionMixin, HTTPSConnection), {"allow_private": allow_private}
    )
    return {
        "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class PinnedAdapter(HTTPAdapter):
    """requests adapter whose connections only go to vetted addresses."""

    def __init__(self, *, allow_private: bool = False, **kwargs):
        self.allow_private = allow_private
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self.allow_private)


class NoRedirectSession(Session):
    """A requests Session that returns 3xx responses as they are and never follows them."""

    def get_redirect_target(self, resp):
        return None


def safe_session(*, allow_private: bool = False) -> Session:
    """A requests Session for upstream calls: pinned connections, no redirects, no env proxies.

    Pass `allow_redirects=False` anyway, so the intent is visible at the call site.
    """
    session = NoRedirectSession()
    session.trust_env = False
    adapter = PinnedAdapter(allow_private=allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def channel_base_url_check(*, base_url: str, allow_private: bool) -> None:
    """`validate_base_url` as a Django ValidationError on the `base_url` field."""
    from django.core.exceptions import ValidationError

    try:
        validate_base_url(base_url, allow_private=allow_private)
    except UnsafeURLError as exc:
        hint = ""
        if not allow_private and _allowed_when_private(base_url):
            hint = " Allow private network on this channel only for an upstream you run yourself."
        raise ValidationError({"base_url": f"Refused base URL: {exc}.{hint}"}) from None


def _allowed_when_private(base_url: str) -> bool:
    try:
        validate_base_url(base_url, allow_private=True)
    except UnsafeURLError:
        return False
    return True
