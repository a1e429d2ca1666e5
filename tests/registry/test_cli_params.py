"""Numbers on the command line are ASCII digits (full-width ones fold), as the settings and the
HTTP API read them: Python's `int()` took any script's digits (`registry serve --port ٨٧١٥`
listened on 8715) and `float()` took `nan`, with which `worker --check --max-age nan` said a
dead worker was alive. Every integer or float option of `registry` uses these types."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from registry.cliparams import AsciiFloat, AsciiInt


@click.command()
@click.option("--count", type=AsciiInt(min=1), default=5)
@click.option("--offset", type=AsciiInt())
@click.option("--age", type=AsciiFloat(min=0, min_open=True), default=60.0)
def numbers(count: int, offset: int | None, age: float) -> None:
    click.echo(f"{count} {offset} {age}")


def _run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(numbers, list(args))


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        ((), "5 None 60.0"),
        (("--count", "12", "--offset", "-3", "--age", "0.5"), "12 -3 0.5"),
        (("--count", "１２", "--offset", "－３", "--age", "１.５"), "12 -3 1.5"),  # full-width folds
        (("--count", " 7 ", "--age", "1e3"), "7 None 1000.0"),
    ],
)
def test_ascii_numbers_are_read(args: tuple[str, ...], printed: str) -> None:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == printed


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--count", "٣"),  # Arabic-Indic
        ("--count", "३"),  # Devanagari
        ("--count", "1_000"),
        ("--count", "0x10"),
        ("--count", "0"),
        ("--count", "-1"),
        ("--count", ""),
        ("--offset", "1.5"),
        ("--offset", "9" * 5000),  # longer than int() converts
        ("--age", "nan"),
        ("--age", "NaN"),
        ("--age", "inf"),
        ("--age", "-inf"),
        ("--age", "1e999"),
        ("--age", "0"),
        ("--age", "-1"),
        ("--age", "٣"),
        ("--age", "1_0"),
    ],
)
def test_anything_else_is_one_error_line(option: str, value: str) -> None:
    result = _run(option, value)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [error] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"'{option}'" in error, error


def test_every_number_option_of_the_registry_command_reads_ascii_digits() -> None:
    from service.cli import main

    def walk(command: click.Command, path: str) -> list[str]:
        found = [
            f"{path} {param.name}"
            for param in command.params
            if isinstance(param.type, click.types._NumberParamTypeBase)
            and not isinstance(param.type, AsciiInt | AsciiFloat)
        ]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    assert walk(main, "registry") == []
