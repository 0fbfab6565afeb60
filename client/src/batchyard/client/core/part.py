"""`Part`: what every part of a client (`client.definitions`, `client.tokens`, ...) is
made of in both faces — the stub of its service and the face's call helper."""

from __future__ import annotations

from typing import Generic, TypeVar

Stub = TypeVar("Stub")
Call = TypeVar("Call")


class Part(Generic[Stub, Call]):
    """A part of a client: `_stub`, the generated stub of its service, and `_call`, the
    call helper of its face (`Caller` or `AsyncCaller`) that every unary call goes
    through."""

    def __init__(self, stub: Stub, call: Call) -> None:
        self._stub = stub
        self._call = call
