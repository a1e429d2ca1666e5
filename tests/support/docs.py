"""Reading the examples out of the Markdown documents, so that tests run what the docs say."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.S | re.M)
LABELLED = re.compile(r"^<!-- example: (?P<name>[^ ]+) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.S | re.M)


def document(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def labelled_examples(text: str) -> dict[str, str]:
    """The fenced blocks right after an `<!-- example: NAME -->` line, by NAME."""
    return {m["name"]: m["body"] for m in LABELLED.finditer(text)}


def shell_commands(text: str) -> list[str]:
    """Every command of every ```sh block, backslash continuations joined, comments and
    blank lines left out."""
    commands: list[str] = []
    for block in FENCE.finditer(text):
        if block["lang"] != "sh":
            continue
        pending = ""
        for line in block["body"].splitlines():
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
    return commands
