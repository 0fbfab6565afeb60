"""`batchyard definitions`: create, get, list, update and delete job definitions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from batchyard.client.cli.definition_files import parse_mask, read_definition_file
from batchyard.client.cli.definition_views import (
    JOB_TYPES,
    definition_details,
    definitions_table,
)
from batchyard.client.cli.failures import EXIT_OK, UsageError
from batchyard.client.cli.options import (
    add_amount_options,
    add_connection_options,
    add_output_option,
    command_group,
    open_client,
    positive_int,
)
from batchyard.client.cli.render import message_dict, print_listing, to_json, to_yaml
from batchyard.v1 import definition_pb2

DEFAULT_LIMIT = 50

GROUP_EPILOG = """\
A definition file is the protobuf JSON mapping of the Definition message, as JSON or
YAML (camelCase or snake_case field names). What `get -o json` prints can be edited
and applied back with `update -f`.

examples:
  batchyard definitions create -f hello.yaml
  batchyard definitions list --prefix etl- --type python
  batchyard definitions get hello -o yaml > hello.yaml
  batchyard definitions update hello -f hello.yaml
  batchyard definitions delete hello
"""

CREATE_EPILOG = """\
example file (hello.yaml):
  name: hello
  description: Says hello.
  config:
    type: JOB_TYPE_PYTHON
    source: {inline: {text: "print('hello')"}}
    args: [--greeting, hi]
    timeout: 600s

examples:
  batchyard definitions create -f hello.yaml
  batchyard definitions create -f hello.json -o json
  cat hello.yaml | batchyard definitions create -f -
"""

GET_EPILOG = """\
REF is the definition's name or uuid.

examples:
  batchyard definitions get hello
  batchyard definitions get hello --version 1
  batchyard definitions get 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o json > hello.json
"""

LIST_EPILOG = """\
Definitions are listed by name. Without --all, at most --limit of them are shown
(default 50) and a note on stderr says when there are more.

examples:
  batchyard definitions list
  batchyard definitions list --prefix etl- --type sql
  batchyard definitions list --all -o json
"""

UPDATE_EPILOG = """\
REF is the definition's name or uuid. Without --mask, the update replaces the
top-level fields the file sets among name, description and config; with --mask only
the named fields (e.g. config.args, config.timeout, config.retry_strategy). Secrets
(secretEnv, a Git access token, a SQL DSN) are kept unless the file sets them or the
mask names them. Every update bumps the version; earlier versions stay readable.

examples:
  batchyard definitions get hello -o yaml > hello.yaml   # edit it, then:
  batchyard definitions update hello -f hello.yaml
  batchyard definitions update hello -f args.yaml --mask config.args
  batchyard definitions update hello -f hello.yaml --expected-version 3
"""

DELETE_EPILOG = """\
REF is the definition's name or uuid. The name becomes free for a new definition;
runs already submitted keep the version they pinned.

examples:
  batchyard definitions delete hello
"""


def register(subparsers: Any) -> None:
    """Add `definitions` and its commands to the `batchyard` parser."""
    new_command = command_group(
        subparsers,
        "definitions",
        help_text="create, get, list, update and delete job definitions",
        description="Manage job definitions: named, versioned job configurations.",
        epilog=GROUP_EPILOG,
    )

    def command(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        parser = new_command(name, help_text, epilog)
        add_connection_options(parser)
        return parser

    create = command("create", "create a definition from a file", CREATE_EPILOG)
    _add_file_option(create)
    add_output_option(create, default=None)
    create.set_defaults(handler=create_definition)

    get = command("get", "show one definition", GET_EPILOG)
    get.add_argument("ref", metavar="REF", help="name or uuid")
    get.add_argument("--version", type=positive_int, default=0, help="an earlier version")
    add_output_option(get)
    get.set_defaults(handler=get_definition)

    list_ = command("list", "list definitions", LIST_EPILOG)
    _add_list_options(list_)
    add_output_option(list_)
    list_.set_defaults(handler=list_definitions)

    update = command("update", "change a definition from a file", UPDATE_EPILOG)
    update.add_argument("ref", metavar="REF", help="name or uuid")
    _add_file_option(update)
    update.add_argument(
        "--mask",
        metavar="PATH,...",
        help="the fields to update, e.g. config.args,config.env (default: see below)",
    )
    update.add_argument(
        "--expected-version",
        metavar="N",
        type=positive_int,
        default=0,
        help="update only while the current version is N",
    )
    add_output_option(update, default=None)
    update.set_defaults(handler=update_definition)

    delete = command("delete", "delete a definition", DELETE_EPILOG)
    delete.add_argument("ref", metavar="REF", help="name or uuid")
    delete.set_defaults(handler=delete_definition)


def _add_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        required=True,
        help="definition file, JSON or YAML; - for stdin",
    )


def _add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix", default="", help="only names starting with this")
    parser.add_argument("--type", choices=sorted(JOB_TYPES), help="only this job type")
    add_amount_options(parser, "definitions", DEFAULT_LIMIT)


def create_definition(args: argparse.Namespace) -> int:
    """`definitions create -f FILE`."""
    loaded = read_definition_file(args.file)
    with open_client(args) as client:
        created = client.definitions.create(loaded.definition)
    _show_written(created, "created", args.output)
    return EXIT_OK


def get_definition(args: argparse.Namespace) -> int:
    """`definitions get REF [--version N]`."""
    with open_client(args) as client:
        definition = client.definitions.get(args.ref, args.version)
    if args.output == "table":
        print(definition_details(definition, datetime.now(UTC)))
    else:
        _print_data(message_dict(definition), args.output)
    return EXIT_OK


def list_definitions(args: argparse.Namespace) -> int:
    """`definitions list [--prefix P] [--type T] [--limit N | --all]`."""
    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(
            client.definitions.list(
                prefix=args.prefix,
                type=args.type,
                limit=None if limit is None else limit + 1,  # one more tells if there are more
                page_size=args.page_size,
            )
        )
    table_of = partial(definitions_table, now=datetime.now(UTC))
    print_listing(found, limit, args.output, table_of, noun="definitions")
    return EXIT_OK


def update_definition(args: argparse.Namespace) -> int:
    """`definitions update REF -f FILE [--mask PATH,...] [--expected-version N]`."""
    loaded = read_definition_file(args.file)
    paths = parse_mask(args.mask) if args.mask is not None else loaded.default_mask()
    if not paths:
        raise UsageError(
            f"{args.file} sets none of name, description, config: nothing to update "
            "(name the fields with --mask)"
        )
    with open_client(args) as client:
        updated = client.definitions.update(
            args.ref, loaded.definition, paths, expected_version=args.expected_version
        )
    _show_written(updated, "updated", args.output)
    return EXIT_OK


def delete_definition(args: argparse.Namespace) -> int:
    """`definitions delete REF`."""
    with open_client(args) as client:
        client.definitions.delete(args.ref)
    print(f"deleted definition {args.ref}")
    return EXIT_OK


def _show_written(definition: definition_pb2.Definition, verb: str, output: str | None) -> None:
    if output is None:
        print(
            f"{verb} definition {definition.name} "
            f"(version {definition.version}, uuid {definition.uuid})"
        )
    elif output == "table":
        print(definitions_table([definition], datetime.now(UTC)))
    else:
        _print_data(message_dict(definition), output)


def _print_data(value: dict[str, Any] | Sequence[dict[str, Any]], output: str) -> None:
    print(to_json(value) if output == "json" else to_yaml(value))
