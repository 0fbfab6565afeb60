"""A real S3 endpoint for tests: a moto server on 127.0.0.1, and AWS settings that point
aiobotocore/boto3 at dummy credentials (never a profile of the machine's).

Also a pytest plugin (tests/conftest.py loads it): the fixtures `s3_endpoint` (one moto
server per test module), `aws_env`, `s3` (a boto3 client) and `bucket` (a fresh bucket).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.processes import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """Runs a moto S3 server on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # heavy: only where S3 is used

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def use_test_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials for the default chain, in this process and its children."""
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials for this test (and the processes it starts)."""
    use_test_credentials(monkeypatch, tmp_path)


@pytest.fixture
def s3(s3_endpoint: str, aws_env: None) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
