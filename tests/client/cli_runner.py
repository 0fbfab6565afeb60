"""Running the `batchyard` CLI in-process against a test's server, capturing its output."""

from __future__ import annotations

import asyncio

from batchyard.client.cli.main import main


class Cli:
    """Runs `batchyard GROUP ...` against one server and returns (code, stdout, stderr).

    The CLI is synchronous; it runs in a thread so the in-process server keeps serving."""

    def __init__(self, capsys, target: str, group: str, timeout_flag: str = "--timeout") -> None:
        self.capsys = capsys
        self.target = target
        self.group = group
        self.timeout_flag = timeout_flag

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        args = [self.group, *argv, "--server", self.target, self.timeout_flag, "10"]
        code = await asyncio.to_thread(main, args)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err
