"""`batchyard completion bash|zsh|fish`: a shell completion script, built from the command
line's own parsers, so it completes exactly the commands and flags there are.

The script is static (no Python runs on Tab): commands and sub-commands, each command's
flags, the choices of flags that have them (`-o table|json|yaml`, `--level`, `--status`
...), and file names where a flag or argument takes a file or directory.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchyard.client.cli.failures import EXIT_OK
from batchyard.client.cli.options import add_command

SHELLS = ("bash", "zsh", "fish")
_FILE_METAVARS = ("FILE", "PATH")
_DIR_METAVARS = ("DIR",)

EPILOG = """\
Prints a completion script for your shell on stdout. Load it in the current shell, or
install it once:

  bash:  source <(batchyard completion bash)          # or, for every new shell:
         mkdir -p ~/.local/share/bash-completion/completions
         batchyard completion bash > ~/.local/share/bash-completion/completions/batchyard
  zsh:   source <(batchyard completion zsh)           # after compinit, e.g. in ~/.zshrc
  fish:  mkdir -p ~/.config/fish/completions
         batchyard completion fish > ~/.config/fish/completions/batchyard.fish

It completes commands, flags, the choices of flags such as -o and --level, and file
names where a file is expected. Regenerate it after upgrading batchyard.

examples:
  mkdir -p ~/.local/share/bash-completion/completions   # not there on a fresh HOME
  batchyard completion bash > ~/.local/share/bash-completion/completions/batchyard
  batchyard completion zsh > "${fpath[1]}/_batchyard"
"""


@dataclass
class Command:
    """One command of the tree: its path ("runs submit"), sub-commands and flags."""

    path: str
    help: str = ""
    subcommands: dict[str, str] = field(default_factory=dict)  # name -> help
    flags: list[tuple[list[str], str, bool]] = field(default_factory=list)  # names, help, value?
    choices: dict[str, list[str]] = field(default_factory=dict)  # flag -> its choices
    files: dict[str, str] = field(default_factory=dict)  # flag -> "file" | "dir"
    positional_files: bool = False
    positional_choices: list[str] = field(default_factory=list)


def _file_kind(action: argparse.Action) -> str | None:
    metavar = str(action.metavar or "")
    if action.type is Path or any(m in metavar for m in _FILE_METAVARS):
        return "file"
    if any(m in metavar for m in _DIR_METAVARS):
        return "dir"
    return None


def walk(parser: argparse.ArgumentParser, path: str = "", help_text: str = "") -> list[Command]:
    """Every command under `parser`, depth first, the root (path "") first."""
    command = Command(path, help_text)
    found = [command]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                command.subcommands[name] = helps.get(name, "")
                found += walk(sub, f"{path} {name}".strip(), helps.get(name, ""))
        elif action.option_strings:
            takes_value = action.nargs != 0
            command.flags.append((list(action.option_strings), action.help or "", takes_value))
            for flag in action.option_strings:
                if action.choices is not None and takes_value:
                    command.choices[flag] = [str(c) for c in action.choices]
                kind = _file_kind(action)
                if kind is not None and takes_value:
                    command.files[flag] = kind
        elif action.choices is not None:
            command.positional_choices += [str(c) for c in action.choices]
        elif _file_kind(action) is not None:
            command.positional_files = True
    return found


def _words(values: list[str]) -> str:
    return " ".join(values)


def _data_cases(commands: list[Command], fish: bool = False) -> list[str]:
    """`case` branches answering (path, what): subs, opts, valued, choices FLAG, file FLAG."""
    cases: list[tuple[str, str]] = []
    for c in commands:
        flags = [f for names, _, _ in c.flags for f in names]
        valued = [f for names, _, value in c.flags if value for f in names]
        cases.append((f"{c.path}|subs", _words(list(c.subcommands) or c.positional_choices)))
        cases.append((f"{c.path}|opts", _words(flags)))
        cases.append((f"{c.path}|valued", _words(valued)))
        cases.append((f"{c.path}|positional", "file" if c.positional_files else ""))
        for flag, choices in c.choices.items():
            cases.append((f"{c.path}|choices {flag}", _words(choices)))
        for flag, kind in c.files.items():
            cases.append((f"{c.path}|file {flag}", kind))
    if fish:
        return [
            f"        case '{key}'\n            echo '{value}'" for key, value in cases if value
        ]
    return [f'        "{key}") echo "{value}" ;;' for key, value in cases if value]


def bash_script(commands: list[Command]) -> str:
    """The bash completion script."""
    cases = "\n".join(_data_cases(commands))
    return f"""\
# bash completion for batchyard (generated by `batchyard completion bash`)
_batchyard_data() {{
    case "$1|$2" in
{cases}
    esac
}}

_batchyard_path() {{
    # The command path of the words before the cursor, and whether the word at the
    # cursor is the value of a flag (then its name is in _batchyard_flag).
    local word i skip=0
    _batchyard_cmd="" _batchyard_flag=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            --*=*) ;;
            -*) [[ " $(_batchyard_data "$_batchyard_cmd" valued) " == *" $word "* ]] &&
                    skip=1 && _batchyard_flag="$word" ;;
            *) [[ " $(_batchyard_data "$_batchyard_cmd" subs) " == *" $word "* ]] &&
                    _batchyard_cmd="${{_batchyard_cmd:+$_batchyard_cmd }}$word" ;;
        esac
    done
    ((skip)) || _batchyard_flag=""
}}

_batchyard() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" words kind
    _batchyard_path
    if [[ -n "$_batchyard_flag" ]]; then
        words="$(_batchyard_data "$_batchyard_cmd" "choices $_batchyard_flag")"
        kind="$(_batchyard_data "$_batchyard_cmd" "file $_batchyard_flag")"
        if [[ -n "$words" ]]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
        elif [[ "$kind" == dir ]]; then
            COMPREPLY=($(compgen -d -- "$cur"))
        elif [[ "$kind" == file ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_batchyard_data "$_batchyard_cmd" opts)" -- "$cur"))
        return 0
    fi
    words="$(_batchyard_data "$_batchyard_cmd" subs)"
    if [[ -n "$words" ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    elif [[ -n "$(_batchyard_data "$_batchyard_cmd" positional)" ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}}
complete -o default -F _batchyard batchyard
"""


def _zsh_described(commands: list[Command]) -> str:
    lines = []
    for c in commands:
        if c.subcommands:
            items = " ".join(
                "'" + f"{name}:{text}".replace("'", "'\\''") + "'"
                for name, text in c.subcommands.items()
            )
            lines.append(f'        "{c.path}") described=({items}) ;;')
    return "\n".join(lines)


def zsh_script(commands: list[Command]) -> str:
    """The zsh completion script (native: sub-commands are shown with their help)."""
    cases = "\n".join(_data_cases(commands))
    described = _zsh_described(commands)
    return f"""\
#compdef batchyard
# zsh completion for batchyard (generated by `batchyard completion zsh`)
_batchyard_data() {{
    case "$1|$2" in
{cases}
    esac
}}

_batchyard() {{
    local cmd="" flag="" word skip=0 i
    local -a described
    for ((i = 2; i < CURRENT; i++)); do
        word="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            --*=*) ;;
            -*) if [[ " $(_batchyard_data "$cmd" valued) " == *" $word "* ]]; then
                    skip=1; flag="$word"; fi ;;
            *) if [[ " $(_batchyard_data "$cmd" subs) " == *" $word "* ]]; then
                    cmd="${{cmd:+$cmd }}$word"; fi ;;
        esac
    done
    ((skip)) || flag=""
    if [[ -n "$flag" ]]; then
        local choices="$(_batchyard_data "$cmd" "choices $flag")"
        local kind="$(_batchyard_data "$cmd" "file $flag")"
        if [[ -n "$choices" ]]; then compadd -- ${{=choices}}
        elif [[ "$kind" == dir ]]; then _files -/
        elif [[ "$kind" == file ]]; then _files
        fi
        return
    fi
    if [[ "${{words[CURRENT]}}" == -* ]]; then
        compadd -- ${{=$(_batchyard_data "$cmd" opts)}}
        return
    fi
    case "$cmd" in
{described}
    esac
    local subs="$(_batchyard_data "$cmd" subs)"
    if (( ${{#described}} )); then
        _describe -t commands 'batchyard command' described
    elif [[ -n "$subs" ]]; then
        compadd -- ${{=subs}}
    elif [[ -n "$(_batchyard_data "$cmd" positional)" ]]; then
        _files
    fi
}}

if [[ "$funcstack[1]" == _batchyard ]]; then
    _batchyard "$@"
else
    compdef _batchyard batchyard
fi
"""


def _fish_escape(text: str) -> str:
    return " ".join(text.split()).replace("\\", "\\\\").replace("'", "\\'")


FISH_HEAD = """\
# fish completion for batchyard (generated by `batchyard completion fish`)
function __batchyard_data
    switch "$argv[1]|$argv[2]"
CASES
    end
end

function __batchyard_words
    string split -- ' ' (__batchyard_data $argv)
end

function __batchyard_cmd
    # The command path of the words before the cursor.
    set -l cmd ''
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '--*=*'
            case '-*'
                if contains -- $word (__batchyard_words "$cmd" valued)
                    set skip 1
                end
            case '*'
                if contains -- $word (__batchyard_words "$cmd" subs)
                    set cmd (string trim -- "$cmd $word")
                end
        end
    end
    echo $cmd
end

function __batchyard_at
    test (__batchyard_cmd) = "$argv[1]"
end

complete -c batchyard -f"""


def fish_script(commands: list[Command]) -> str:
    """The fish completion script."""
    cases = "\n".join(_data_cases(commands, fish=True))
    lines = [FISH_HEAD.replace("CASES", cases)]
    for c in commands:
        at = f"-n '__batchyard_at \"{c.path}\"'"
        for name, text in c.subcommands.items():
            lines.append(f"complete -c batchyard {at} -a {name} -d '{_fish_escape(text)}'")
        if c.positional_choices:
            lines.append(f"complete -c batchyard {at} -a '{' '.join(c.positional_choices)}'")
        for names, text, value in c.flags:
            spec = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in names)
            extra = ""
            if value:
                choices = c.choices.get(names[0])
                extra = " -x"
                if choices:
                    extra += f" -a '{' '.join(choices)}'"
                elif names[0] in c.files:
                    extra = " -r -F"
            lines.append(f"complete -c batchyard {at} {spec}{extra} -d '{_fish_escape(text)}'")
        if c.positional_files and not c.subcommands:
            lines.append(f"complete -c batchyard {at} -F")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of `shell` for the command line `parser` describes."""
    commands = walk(parser)
    return {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell](commands)


def register(subparsers: Any) -> None:
    """Add `completion` to the `batchyard` parser."""
    parser = add_command(
        subparsers,
        "completion",
        help_text="print a shell completion script (bash, zsh or fish)",
        epilog=EPILOG,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=print_script)


def print_script(args: argparse.Namespace) -> int:
    """`completion SHELL`."""
    from batchyard.client.cli.main import build_parser  # the whole tree, this one too

    sys.stdout.write(script(args.shell, build_parser()))
    return EXIT_OK
