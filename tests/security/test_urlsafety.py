"""SSRF guard: which channel base URLs may be saved and which addresses may be dialled."""

import asyncio
import http.server
import ipaddress
import threading

import aiohttp
import pytest
import requests
from django.core.exceptions import ValidationError
from django.urls import reverse

from groups import urlsafety
from groups.models import Channel
from groups.services import channel_save
from groups.urlsafety import (
    SafeResolver,
    UnsafeURLError,
    address_problem,
    guard_url,
    safe_connector,
    safe_session,
    validate_base_url,
    vetted_addresses,
)

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.1.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "192.0.2.1",
    "240.0.0.1",
]
ALWAYS_REFUSED = [
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.170.2",
    "100.100.100.200",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED + ALWAYS_REFUSED)
def test_private_and_special_addresses_are_refused(address):
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_multicast_and_unspecified_are_refused_even_when_private_is_allowed(address):
    assert address_problem(ipaddress.ip_address(address), allow_private=True) is not None


@pytest.mark.parametrize("address", REFUSED)
def test_private_addresses_pass_when_the_channel_allows_them(address):
    assert address_problem(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://api.example.com/v1", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme"),
        ("api.example.com/v1", "scheme"),
        ("https://user:secret@api.example.com/v1", "credentials"),
        ("http://127.0.0.1:8100/v1", "loopback"),
        ("http://[::1]/v1", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ("http://10.0.0.5/v1", "private"),
        ("http://localhost:6379/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal form of 127.0.0.1, resolved by getaddrinfo
        ("http://0x7f.1/", "loopback"),
        ("https://api.example.com:99999/v1", "valid URL"),
    ],
)
def test_unsafe_base_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(UnsafeURLError, match=reason):
        validate_base_url(url)


def test_hostnames_are_checked_on_every_resolved_address():
    def resolver(host, port):
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(UnsafeURLError, match="10.0.0.7 is a private address"):
        validate_base_url("https://mixed.example/v1", resolver=resolver)
    with pytest.raises(UnsafeURLError, match="private"):
        vetted_addresses("mixed.example", 443, resolver=resolver)
    assert vetted_addresses("mixed.example", 443, resolver=resolver, allow_private=True) == [
        "93.184.216.34",
        "10.0.0.7",
    ]


def test_public_and_unresolvable_hosts_are_accepted_at_save_time():
    validate_base_url(
        "https://api.example.com/v1", resolver=lambda h, p: [ipaddress.ip_address("93.184.216.34")]
    )
    validate_base_url("https://does-not-resolve.invalid/v1")  # vetted again at connect time
    with pytest.raises(UnsafeURLError, match="does not resolve"):
        vetted_addresses("does-not-resolve.invalid", 443)


def test_loopback_is_accepted_only_for_channels_that_allow_private_networks():
    validate_base_url("http://127.0.0.1:8100/u/domestic/v1", allow_private=True)
    with pytest.raises(UnsafeURLError, match="metadata"):
        validate_base_url("http://169.254.169.254/", allow_private=True)


def test_guard_url_checks_literals_without_dns():
    guard_url("https://api.example.com/v1")
    guard_url("http://127.0.0.1:8100/v1", allow_private=True)
    with pytest.raises(UnsafeURLError):
        guard_url("http://127.0.0.1:8100/v1")
    with pytest.raises(UnsafeURLError):
        guard_url("http://[::ffff:169.254.169.254]/", allow_private=True)


def _channel_fields(**extra):
    return {"name": "ssrf-test", "kind": "openai", "base_url": "http://169.254.169.254/v1", **extra}


def test_channel_save_refuses_an_unsafe_base_url(demo):
    from accounts.models import User

    admin = User.objects.get(username="admin")
    with pytest.raises(ValidationError) as exc:
        channel_save(actor=admin, api_key="sk-upstream-secret", **_channel_fields())
    assert "metadata" in exc.value.message_dict["base_url"][0]
    with pytest.raises(ValidationError) as exc:
        channel_save(actor=admin, api_key="x", **_channel_fields(base_url="http://10.0.0.1/v1"))
    assert "Allow private network" in exc.value.message_dict["base_url"][0]
    assert not Channel.objects.filter(name="ssrf-test").exists()
    ok = channel_save(
        actor=admin,
        api_key="x",
        **_channel_fields(base_url="http://10.0.0.1/v1", allow_private_network=True),
    )
    assert Channel.objects.get(pk=ok.pk).base_url == "http://10.0.0.1/v1"
    with pytest.raises(ValidationError):
        channel_save(actor=admin, channel=ok, allow_private_network=False)


def test_demo_channels_stay_valid(demo):
    for channel in Channel.objects.all():
        validate_base_url(channel.base_url, allow_private=channel.allow_private_network)


def test_admin_channel_form_shows_a_field_error(client, demo):
    from accounts.models import User

    client.force_login(User.objects.get(username="admin"))
    channel = Channel.objects.get(name="domestic")
    url = reverse("admin:groups_channel_change", args=[channel.pk])
    data = {
        "name": channel.name,
        "kind": channel.kind,
        "base_url": "http://169.254.169.254/latest/meta-data/",
        "api_key": "",
        "priority": "0",
        "weight": "1",
        "max_concurrency": "0",
        "enabled": "on",
        "allow_private_network": "on",
        "probe_interval_s": "15",
        "latency_threshold_ms": "20000",
        "channel_models-TOTAL_FORMS": "0",
        "channel_models-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Refused base URL" in body and "cloud metadata" in body
    channel.refresh_from_db()
    assert "169.254" not in channel.base_url


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"upstream ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch):
    """`rebind.test` resolves to loopback at connect time, as a DNS-rebinding attacker would."""
    real = urlsafety.resolve_host

    def resolve(host, port):
        if host == "rebind.test":
            return [ipaddress.ip_address("127.0.0.1")]
        return real(host, port)

    monkeypatch.setattr(urlsafety, "resolve_host", resolve)


def test_requests_session_refuses_private_addresses_at_connect_time(local_upstream, rebinding_dns):
    with safe_session() as session, pytest.raises(requests.ConnectionError, match="SSRF guard"):
        session.get(f"http://rebind.test:{local_upstream}/", timeout=5, allow_redirects=False)
    with safe_session() as session, pytest.raises(requests.ConnectionError, match="SSRF guard"):
        session.get(f"http://localhost:{local_upstream}/", timeout=5, allow_redirects=False)


def test_requests_session_connects_to_the_vetted_address(local_upstream, rebinding_dns):
    # rebind.test is not in any real DNS: reaching the server proves the pinned address was used.
    with safe_session(allow_private=True) as session:
        response = session.get(f"http://rebind.test:{local_upstream}/", timeout=5, allow_redirects=False)
    assert response.status_code == 200 and response.text == "upstream ok"


def test_requests_session_never_follows_redirects(local_upstream):
    with safe_session(allow_private=True) as session:
        response = session.get(
            f"http://127.0.0.1:{local_upstream}/redirect", timeout=5, allow_redirects=False
        )
        assert response.status_code == 302
        forgotten_flag = session.get(f"http://127.0.0.1:{local_upstream}/redirect", timeout=5)
        assert forgotten_flag.status_code == 302 and not forgotten_flag.history


async def _aiohttp_get(url, *, allow_private):
    connector = safe_connector(allow_private=allow_private)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, allow_redirects=False) as response,
    ):
        return response.status, await response.text()


def test_aiohttp_connector_refuses_hostnames_that_resolve_to_private_addresses(local_upstream):
    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(_aiohttp_get(f"http://localhost:{local_upstream}/", allow_private=False))
    assert asyncio.run(_aiohttp_get(f"http://localhost:{local_upstream}/", allow_private=True)) == (
        200,
        "upstream ok",
    )


def test_aiohttp_resolver_checks_every_address():
    class Fake(aiohttp.abc.AbstractResolver):
        async def resolve(self, host, port=0, family=0):
            return [
                {
                    "hostname": host,
                    "host": "93.184.216.34",
                    "port": port,
                    "family": 2,
                    "proto": 0,
                    "flags": 0,
                },
                {"hostname": host, "host": "10.0.0.9", "port": port, "family": 2, "proto": 0, "flags": 0},
            ]

        async def close(self):
            pass

    with pytest.raises(UnsafeURLError, match="10.0.0.9"):
        asyncio.run(SafeResolver(resolver=Fake()).resolve("mixed.example", 443))
    assert (
        len(asyncio.run(SafeResolver(resolver=Fake(), allow_private=True).resolve("mixed.example", 443))) == 2
    )
    with pytest.raises(UnsafeURLError, match="metadata"):
        asyncio.run(SafeResolver(resolver=Fake(), allow_private=True).resolve("metadata.google.internal", 80))


def test_aiohttp_session_refuses_ip_literals_before_connecting(local_upstream):
    from groups.urlsafety import UpstreamRefused, safe_client_session

    async def get(allow_private):
        async with (
            safe_client_session(allow_private=allow_private) as session,
            session.get(f"http://127.0.0.1:{local_upstream}/", allow_redirects=False) as response,
        ):
            return response.status

    with pytest.raises(UpstreamRefused) as exc:
        asyncio.run(get(False))
    assert isinstance(exc.value, aiohttp.ClientError) and "loopback" in str(exc.value)
    assert asyncio.run(get(True)) == 200
