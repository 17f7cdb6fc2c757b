"""URL canonicalization (dedup keys, canonical links) and private-address checks."""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url
from w3lib.url import url_query_cleaner

# courlan strips the common trackers (utm_*, fbclid, gclid, ref, source ...); these are the
# ones CJK portals add on top (Alibaba "spm", WeChat/Toutiao "from", share buttons).
EXTRA_TRACKERS = (
    "spm",
    "scm",
    "from",
    "share",
    "share_from",
    "sharer",
    "wfr",
    "tt_from",
    "isappinstalled",
    "cmpid",
    "ito",
    "nclick_id",
    "ns_campaign",
    "ns_mchannel",
    "ns_source",
)
# Paths of index, tag, author and service pages, and of files that are no pages.
NON_ARTICLE_PATH = re.compile(
    r"/(?:tags?|authors?|reporters?|writers?|category|categories|section|sections|search|topics?|list|"
    r"login|member|user|about|contact|privacy|rss|feed)(?:/|\.|$)|"
    r"\.(?:jpe?g|png|gif|webp|svg|pdf|zip|mp4|mp3|css|js|xml)$",
    re.I,
)
# Hosts that serve the same article as the desktop site under another name.
_MOBILE_PREFIX = re.compile(r"^(?:m|mobile|wap|3g|amp)\.")


def desktop_host(host: str, homepage_host: str | None = None) -> str:
    """``m.site.com`` -> the outlet's desktop host (its homepage's host when known, else ``www.site.com``)."""
    if not _MOBILE_PREFIX.match(host):
        return host
    bare = _MOBILE_PREFIX.sub("", host)
    if homepage_host and homepage_host.removeprefix("www.") == bare:
        return homepage_host
    return "www." + bare


def canonicalize(url: str, homepage: str | None = None) -> str:
    """Normalized URL: lower-case host, no default port or fragment, trackers stripped, mobile host merged."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url.strip()
    home_host = urlsplit(homepage).hostname if homepage else None
    host = desktop_host(parts.hostname.lower(), home_host)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
    url = url_query_cleaner(url, EXTRA_TRACKERS, remove=True, unique=False, keep_fragments=False)
    return normalize_url(url, strict=False)


def on_domains(url: str, domains: list[str]) -> bool:
    """Whether the URL's host is one of ``domains`` or a subdomain of one."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    return "{0.scheme}://{0.netloc}".format(urlsplit(url))


def host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def _is_private_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not ip.is_global or ip.is_multicast


@lru_cache(maxsize=4096)
def is_private_host(host: str) -> bool:
    """True if ``host`` is, or resolves to, a loopback/private/link-local/reserved address.

    Unresolvable names count as public: the download fails on its own, and DNS errors
    must not be reported as a security block.
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _is_private_ip(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return any(_is_private_ip(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos)
