#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails if README.md or docs/*.md shows an `attn` command the binary does not have: a subcommand
path it does not know, or a --flag that the subcommand's --help does not list.

    tests/tools/check_doc_commands.py ATTN_BINARY PROJECT_ROOT

Commands are taken from code lines, indented or fenced (with their continuation lines: after a
trailing backslash, or indented "[--flag ...]"), and from inline code spans; "copy|reverse|sort"
stands for each of the three. Text after " #" on a code line is a comment. What a command does is
the business of the tests of that command; this keeps the commands a reader copies from the docs in
step with the options the binary takes.
"""
import itertools
import pathlib
import re
import subprocess
import sys

COMMAND = re.compile(r"(?:^|[\s;(])(?:\S*/)?attn ([a-z].*)$")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


class Cli:
    def __init__(self, binary):
        self.binary = binary
        self.helps = {}

    def help(self, path):
        """--help of `attn PATH...` (cached); None if the binary rejects the path."""
        key = tuple(path)
        if key not in self.helps:
            r = subprocess.run([self.binary, *path, "--help"], capture_output=True, text=True)
            self.helps[key] = r.stdout if r.returncode == 0 else None
        return self.helps[key]

    def subcommands(self, path):
        text = self.help(path) or ""
        listed = re.search(r"Subcommands:\n(.*)", text, re.S)
        return {line.split()[0] for line in listed.group(1).splitlines()
                if re.match(r"  \S", line)} if listed else set()

    def flags(self, path):
        return set(FLAG.findall(self.help(path) or ""))


def subcommand_paths(cli, words):
    """Every subcommand path the leading words name ("copy|reverse|sort" gives three)."""
    alternatives = []
    for word in words:
        names = word.split("|")
        if not all(n in cli.subcommands([a[0] for a in alternatives]) for n in names):
            break
        alternatives.append(names)
    return [list(p) for p in itertools.product(*alternatives)] if alternatives else []


def commands_in(text):
    """(line number, command after `attn `) for each command shown in a markdown text."""
    lines = text.splitlines()
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        code = fenced or line.startswith(("    ", "\t"))
        if not code:
            for span in re.findall(r"`([^`]*)`", line):
                m = COMMAND.search(span)
                if m:
                    yield i + 1, m.group(1)
            continue
        m = COMMAND.search(line)
        if m:
            command = m.group(1).split(" #")[0]
            for more in lines[i + 1:]:  # "\" line ends and indented "[--flag ...]" lines go on
                if not (command.endswith("\\") or re.match(r"^\s+[\[-]", more)) or COMMAND.search(more):
                    break
                command = command.rstrip("\\") + " " + more.strip().split(" #")[0]
            yield i + 1, command


def main(binary, root):
    cli = Cli(binary)
    if cli.help([]) is None:
        sys.exit(f"{binary} --help failed")
    root = pathlib.Path(root)
    errors, checked = [], 0
    for md in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for line, command in commands_in(md.read_text()):
            paths = subcommand_paths(cli, command.split())
            if not paths:
                continue  # prose such as "attn is a library"
            checked += 1
            for path in paths:
                unknown = sorted(set(FLAG.findall(command)) - cli.flags(path) - {"--help"})
                if unknown:
                    errors.append(f"{md.relative_to(root)}:{line}: `attn {' '.join(path)}` has no "
                                  f"{', '.join(unknown)}: {command[:120]}")
    for e in errors:
        print(e)
    print(f"{checked} attn commands in the docs checked against --help, {len(errors)} with unknown flags")
    return 1 if errors or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
