"""An LLM endpoint as a NetworkPolicy can see it: the host and port of a provider's baseURL.

NetworkPolicy knows pods and addresses, not host names; what a host name says about where the
endpoint is (an address, an in-cluster Service's namespace, or nothing) is read here, once, for
the egress rules (netpol.py) and the checks (policy.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Endpoint:
    host: str  # lower-case: host names are case-insensitive, so two spellings are one endpoint
    port: int

    @classmethod
    def of(cls, url: str) -> Endpoint:
        """The endpoint of an http(s) URL; its port is the URL's, else 80 or 443. Raises
        ValueError for a URL without a host or with a port out of range."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host")
        port = parts.port  # ValueError when out of range
        return cls(parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80))

    @property
    def address(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def namespace(self) -> str | None:
        """The namespace of an in-cluster Service name (``svc.ns``, ``svc.ns.svc[...]``), ""
        for a bare ``svc`` (which resolves in the client's own namespace), None for an address
        or any other host name."""
        if self.address is not None:
            return None
        labels = self.host.split(".")
        if len(labels) == 1:
            return ""
        if len(labels) == 2 or labels[2] == "svc":
            return labels[1]
        return None
