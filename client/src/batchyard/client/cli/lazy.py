"""Sub-commands that are built only when chosen, so `batchyard --help` or `batchyard runs
list` does not import the server, the worker, grpc or protobuf for commands it does not run.

A lazy command is a name, its one-line help and a target `"module:function"`: the
function is the command module's `register(subparsers)`. The top-level help lists the
name and help; choosing the command imports the module and registers its real parser in
place (same position, so the full parser prints the same listing). `load_all()` builds the
whole tree (completion scripts, flag tables, tests).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import import_module
from typing import Any


class LazySubcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """`add_subparsers(action=LazySubcommands)`: sub-parsers registered now (`add_parser`,
    as usual) or when chosen (`add_lazy`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._targets: dict[str, str] = {}

    def add_lazy(self, name: str, help_text: str, target: str) -> None:
        """List `name` with `help_text`; build it from `target` ("module:function",
        called with this action) only when chosen."""
        if name in self._name_parser_map:
            raise argparse.ArgumentError(self, f"conflicting subparser: {name}")
        self._targets[name] = target
        self._name_parser_map[name] = None  # a placeholder: choices are checked with `in`
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help_text))

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name not in self._targets:
            return super().add_parser(name, **kwargs)
        # The real registration of a listed lazy command: it takes the placeholder's place.
        del self._targets[name]
        del self._name_parser_map[name]
        index = next(i for i, a in enumerate(self._choices_actions) if a.dest == name)
        placeholder = self._choices_actions.pop(index)
        kwargs.setdefault("help", placeholder.help)
        parser = super().add_parser(name, **kwargs)
        self._choices_actions.insert(index, self._choices_actions.pop())
        return parser

    def load(self, name: str) -> None:
        """Build `name`'s parser now, if it is a lazy command not built yet."""
        target = self._targets.get(name)
        if target is None:
            return
        module_name, _, function = target.partition(":")
        getattr(import_module(module_name), function)(self)
        if name in self._targets:
            raise RuntimeError(f"{target} did not register the command {name!r}")

    def load_all(self) -> None:
        """Build every lazy command's parser, and theirs (nested lazy commands too)."""
        for name in list(self._targets):
            self.load(name)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, Sequence) and values and isinstance(values[0], str):
            self.load(values[0])
        super().__call__(parser, namespace, values, option_string)
