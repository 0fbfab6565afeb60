"""What a Git repository URL says: the transport git will use, and how to show it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?!//)")


def protocol_of(url: str) -> str:
    """The transport git uses for ``url``: https, ssh, file, ... (lower case)."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        return {"git+ssh": "ssh", "ssh+git": "ssh"}.get(scheme, scheme)
    if "::" in url:  # <transport>::<address>, e.g. ext::
        return url.split("::", 1)[0].lower()
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"  # a local path


def display_url(url: str) -> str:
    """The URL as shown in messages (any user information dropped)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return url
