"""Where a webhook may go: every address form that reaches a private network is refused, ports
other than 80 and 443 need a setting, and the host is resolved once."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from api.jobs._webhook_target import address_refusal, resolve_target
from genseal.errors import InputError

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:8.8.8.8",  # mapped, even to a public address: the IPv4 rules decide IPv4
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::808:808",  # NAT64 of a public address
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "ff02::1",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_non_public_or_ipv4_carrying_address_is_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:7f00:1]", "[64:ff9b::a00:1]"],
)
def test_every_notation_of_a_private_address_is_refused(host: str) -> None:
    with pytest.raises(InputError, match="resolves to"):
        resolve_target(f"https://{host}/hook", allow_private=False, ports={443})


def test_ports_other_than_80_and_443_need_the_setting() -> None:
    with pytest.raises(InputError, match="port 8080 is not allowed") as refused:
        resolve_target("https://8.8.8.8:8080/hook", allow_private=False, ports={80, 443})
    assert "GENSEAL_WEBHOOK_PORTS" in (refused.value.hint or "")
    target = resolve_target("https://8.8.8.8:8080/hook", allow_private=False, ports={8080})
    assert (target.port, target.addresses) == (8080, ("8.8.8.8",))
    assert resolve_target("http://8.8.8.8/hook", allow_private=False, ports={80}).port == 80


def test_a_host_is_resolved_once_and_every_address_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def answer(host: str, port: int, *_: Any, **__: Any) -> list[Any]:
        calls.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", answer)
    with pytest.raises(InputError, match=r"non-public address \(10\.0\.0\.1\)"):
        resolve_target("https://hooks.example/x", allow_private=False, ports={443})
    assert calls == ["hooks.example"]
    allowed = resolve_target("https://hooks.example/x", allow_private=True, ports={443})
    assert allowed.addresses == ("8.8.8.8", "10.0.0.1") and allowed.host == "hooks.example"


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/x", "/relative", "https://user:pw@8.8.8.8/x", "https://8.8.8.8:99999/"]
)
def test_urls_that_are_not_deliverable_say_why(url: str) -> None:
    with pytest.raises(InputError, match="webhook"):
        resolve_target(url, allow_private=False, ports={443})
