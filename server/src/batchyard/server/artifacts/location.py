"""`--artifacts`: a local directory or ``s3://BUCKET[/PREFIX]``, made into a store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from batchyard.server.artifacts import ArtifactStore


def default_artifacts() -> str:
    return str(Path(platformdirs.user_data_dir("batchyard")) / "artifacts")


@dataclass(frozen=True)
class ArtifactLocation:
    """Where result files live; validated, not yet connected."""

    directory: Path | None = None
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    def describe(self) -> str:
        """Where, for logs (no credentials)."""
        if self.directory is not None:
            return str(self.directory)
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def as_env(self) -> dict[str, str]:
        """The BATCHYARD_ARTIFACTS* variables that give a worker this same store."""
        if self.directory is not None:
            return {"BATCHYARD_ARTIFACTS": str(self.directory)}
        env = {"BATCHYARD_ARTIFACTS": f"s3://{self.bucket}/{self.prefix}"}
        if self.endpoint_url:
            env["BATCHYARD_ARTIFACTS_ENDPOINT_URL"] = self.endpoint_url
        if self.region:
            env["BATCHYARD_ARTIFACTS_REGION"] = self.region
        return env

    def open(self) -> ArtifactStore:
        if self.directory is not None:
            from batchyard.server.artifacts.local import LocalArtifactStore

            return LocalArtifactStore(self.directory)
        from batchyard.server.artifacts.s3 import S3ArtifactStore  # aiobotocore: only if used

        return S3ArtifactStore(
            self.bucket, self.prefix, endpoint_url=self.endpoint_url, region=self.region
        )


def parse_location(
    value: str, *, endpoint_url: str | None = None, region: str | None = None
) -> ArtifactLocation:
    """A directory (``~`` expanded, made absolute) or ``s3://BUCKET[/PREFIX]``; ValueError
    naming the problem otherwise."""
    value = value.strip()
    if not value:
        raise ValueError("--artifacts: required (a directory or s3://BUCKET[/PREFIX])")
    if "\x00" in value:
        raise ValueError("--artifacts: contains a NUL character")
    if value.startswith("s3://"):
        bucket, _, prefix = value.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"--artifacts: {value!r} names no bucket")
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ValueError(f"--artifacts: {value!r} has an empty, '.' or '..' prefix part")
        return ArtifactLocation(
            bucket=bucket,
            prefix=f"{prefix}/" if prefix else "",
            endpoint_url=endpoint_url or None,
            region=region or None,
        )
    if "://" in value:
        raise ValueError(f"--artifacts: {value!r}: only a directory or s3:// is supported")
    return ArtifactLocation(directory=Path(value).expanduser().resolve())
