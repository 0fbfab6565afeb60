"""Test hosts on one machine: a network namespace each, joined by veth pairs to a bridge
that lives in a namespace of its own (nothing is added to the machine's own network).

    with Network("by1a2b", ["db", "s0", "w0"]) as net:
        net.address("db")                 # 10.213.<n>.1, inside the namespace "by1a2b-db"
        net.popen("db", ["postgres", ...])
        net.cut("w0"); net.heal("w0")      # its link down, then up again
    # every namespace (and with it every veth and the bridge) is gone here

Addresses come from 10.213.0.0/16, a private range, one /24 per network, inside the
namespaces this module made. Everything is removed on exit, even after a failure; a
namespace whose processes are still running is emptied with SIGKILL first (only the
processes inside the namespaces made here).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self


def unavailable() -> str | None:
    """Why this machine cannot build test hosts, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"byprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Network:
    """Named hosts on one bridge; a context manager that removes them all."""

    def __init__(self, prefix: str, hosts: Sequence[str]) -> None:
        self.prefix = prefix
        self.hosts = list(hosts)
        self.subnet = f"10.213.{random.randrange(1, 250)}"
        self._made: list[str] = []

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{self.hosts.index(host) + 1}"

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()

    def _build(self) -> None:
        switch = f"{self.prefix}-sw"
        _ip("netns", "add", switch)
        self._made.append(switch)
        self.run_in(switch, "ip", "link", "add", "br0", "type", "bridge")
        self.run_in(switch, "ip", "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts):
            ns = self.namespace(host)
            _ip("netns", "add", ns)
            self._made.append(ns)
            outer = f"p{index}"
            _ip("-n", switch, "link", "add", outer, "type", "veth", "peer", "eth0", "netns", ns)
            self.run_in(switch, "ip", "link", "set", outer, "master", "br0", "up")
            self.run_in(ns, "ip", "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            self.run_in(ns, "ip", "link", "set", "eth0", "up")
            self.run_in(ns, "ip", "link", "set", "lo", "up")

    def run_in(self, ns: str, *argv: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True)

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Starts ``argv`` on ``host``: in its network namespace only (``nsenter --net``,
        which executes it in place, so the pid is the program's). Not ``ip netns exec``,
        which also remounts /sys and so hides the machine's cgroup hierarchies."""
        netns = f"/var/run/netns/{self.namespace(host)}"
        return subprocess.Popen(["nsenter", f"--net={netns}", "--", *argv], **kwargs)

    def pids(self, host: str) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", self.namespace(host)], capture_output=True, text=True
        )
        return [int(pid) for pid in done.stdout.split()]

    def kill_all(self, host: str) -> list[int]:
        """SIGKILLs every process on ``host``: the pids killed."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def cut(self, host: str) -> None:
        self.run_in(self.namespace(host), "ip", "link", "set", "eth0", "down")

    def heal(self, host: str) -> None:
        self.run_in(self.namespace(host), "ip", "link", "set", "eth0", "up")

    def remove(self) -> None:
        for ns in reversed(self._made):
            for pid in subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._made.clear()
