"""Where result files go (``--artifacts``: a directory or ``s3://BUCKET[/PREFIX]``, the
server's too), with the flags that name it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.config import Flag, Kind, Values, text
from batchyard.worker.results.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore


@dataclass(frozen=True)
class ArtifactLocation:
    """``--artifacts``: a local directory, or a bucket and a prefix ("" or ending in "/")."""

    directory: Path | None = None
    bucket: str = ""
    prefix: str = ""

    def open(
        self, *, endpoint_url: str | None = None, region: str | None = None, **s3: Any
    ) -> ArtifactStore:
        """The store (S3: ``s3`` are S3ArtifactStore's timeouts and attempts)."""
        if self.directory is not None:
            return LocalArtifactStore(self.directory)
        return S3ArtifactStore(
            self.bucket, self.prefix, endpoint_url=endpoint_url, region=region, **s3
        )


def parse_location(raw: str) -> ArtifactLocation:
    """A directory (``~`` expanded, made absolute) or ``s3://BUCKET[/PREFIX]``; ValueError
    saying what is wrong otherwise."""
    raw = raw.strip()
    if "\x00" in raw or "\n" in raw:
        raise ValueError("may not contain a line break or NUL")
    if raw.startswith("s3://"):
        bucket, _, prefix = raw.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{raw!r} names no bucket")
        prefix = prefix.strip("/")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise ValueError(f"{raw!r} has an empty, '.' or '..' part in its prefix")
        return ArtifactLocation(bucket=bucket, prefix=f"{prefix}/" if prefix else "")
    if "://" in raw:
        raise ValueError(f"{raw!r}: only a directory or s3://BUCKET[/PREFIX] is supported")
    return ArtifactLocation(directory=Path(raw).expanduser().resolve())


def _default_location(env: Mapping[str, str]) -> ArtifactLocation:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return parse_location(str(Path(base) / "batchyard" / "artifacts"))


def _endpoint_url(raw: str) -> str:
    url = raw.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{raw!r} must start with http:// or https://")
    return url


ARTIFACTS = Flag(
    "artifacts",
    Kind(parse_location, str, "LOCATION"),
    "where result files go: a directory or s3://BUCKET[/PREFIX], the server's too",
    default_from=_default_location,
    default_text="${XDG_DATA_HOME:-~/.local/share}/batchyard/artifacts",
)
ENDPOINT_URL = Flag(
    "artifacts-endpoint-url",
    Kind(_endpoint_url, str, "URL"),
    "endpoint of an S3-compatible artifact store",
)
REGION = Flag("artifacts-region", text(metavar="REGION"), "region of the S3 artifact store")
FLAGS = (ARTIFACTS, ENDPOINT_URL, REGION)


@dataclass(frozen=True)
class ArtifactSettings:
    """The artifact store the flags name (nothing is connected until it is opened)."""

    location: ArtifactLocation
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_values(cls, values: Values) -> ArtifactSettings:
        region = values[REGION]
        return cls(values[ARTIFACTS], values[ENDPOINT_URL], region.strip() if region else None)

    def open(self, **s3: Any) -> ArtifactStore:
        """The store; ``s3``: S3ArtifactStore's timeouts and attempts."""
        return self.location.open(endpoint_url=self.endpoint_url, region=self.region, **s3)
