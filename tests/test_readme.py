"""The README's console examples are what the program prints, to the byte.

Every ``$ bpo-classify predict|info|explain|check-data|label`` example in the README
that needs no file of the reader's own is run here and its output compared with the
lines under it (``$ printf ... | bpo-classify ...`` feeds the printed text on stdin,
``$ head -3 FILE`` shows the first lines of a file an example wrote). A formatting
change that the README does not show fails here.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from bpo_classify.cli import cli

ROOT = Path(__file__).resolve().parent.parent  # as conftest.ROOT; also when run as ``python -m tests.test_readme``

RUNNABLE = ("predict", "info", "explain", "check-data", "label")


@dataclass
class Example:
    line: int
    command: str
    output: str


def examples() -> list[Example]:
    """Each ``$ ...`` command of the README's console blocks, with the output printed under it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found: list[Example] = []
    for block in re.finditer(r"```console\n(.*?)```", text, flags=re.S):
        start = text.count("\n", 0, block.start()) + 2
        current: Example | None = None
        for offset, line in enumerate(block.group(1).splitlines()):
            if line.startswith("$ "):
                current = Example(start + offset, line[2:], "")
                found.append(current)
            elif current is not None:
                current.output += line + "\n"
    return found


def _runnable(example: Example) -> bool:
    words = shlex.split(example.command.split("|")[-1])
    if words[0] == "head":
        return True
    return (
        words[0] == "bpo-classify" and words[1] in RUNNABLE
        and "--model" not in words and "--engine" not in words and "--text-column" not in words
    )


EXAMPLES = [e for e in examples() if _runnable(e)]


def test_the_readme_has_the_examples_this_file_runs():
    """The examples of predict (table and CSV), label, check-data, info and explain are all found."""
    commands = " ".join(shlex.split(e.command)[1] if e.command.startswith("bpo") else e.command for e in EXAMPLES)
    for name in ("predict", "label", "head -3", "check-data", "info", "explain"):
        assert name in commands, name
    assert len(EXAMPLES) >= 8


def run_examples(runner, directory) -> list[str]:
    """What each runnable example prints, run in order in ``directory`` (which it changes into)."""
    os.chdir(directory)
    link = directory / "datasets"
    if not link.exists():
        link.symlink_to(ROOT / "datasets")
    printed: list[str] = []
    for example in EXAMPLES:
        stdin = None
        command = example.command
        if command.startswith("printf "):
            text, command = command.split("|", 1)
            stdin = shlex.split(text)[1].encode().decode("unicode_escape")
        words = shlex.split(command)
        if words[0] == "head":
            count, name = int(words[1].lstrip("-")), words[2]
            got = "".join((directory / name).read_text(encoding="utf-8").splitlines(keepends=True)[:count])
        else:
            result = runner.invoke(cli, words[1:], input=stdin, catch_exceptions=False)
            assert result.exit_code == 0, (example.line, result.output)
            got = result.output
        printed.append(got)
    return printed


def test_readme_examples_print_what_the_readme_shows(runner, tmp_path, monkeypatch):
    """Each runnable example, run in order in one directory, prints exactly the README's lines."""
    monkeypatch.chdir(tmp_path)  # restored afterwards
    for example, got in zip(EXAMPLES, run_examples(runner, tmp_path)):
        assert got == example.output, f"README line {example.line}: {example.command}"


def rewrite_readme() -> int:
    """Put what each example prints now under it in the README; return how many changed.

    Run from the repository root as ``python -m tests.test_readme`` (``make goldens`` does),
    after a change meant to change the output (``make model``), and review the diff.
    """
    import tempfile

    from click.testing import CliRunner

    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            printed = run_examples(CliRunner(), Path(tmp))
        finally:
            os.chdir(here)
    path = ROOT / "README.md"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = 0
    for example, got in sorted(zip(EXAMPLES, printed), key=lambda pair: -pair[0].line):
        if got != example.output:
            first = example.line  # the 0-based index of the first output line
            lines[first:first + example.output.count("\n")] = got.splitlines(keepends=True)
            changed += 1
    path.write_text("".join(lines), encoding="utf-8")
    return changed


@pytest.mark.parametrize("example", EXAMPLES, ids=[str(e.line) for e in EXAMPLES])
def test_each_example_has_output_to_compare(example):
    """An example with nothing under it would compare nothing."""
    assert example.output.strip()


def test_architecture_section_names_every_module():
    """The README's architecture map names each module of the package, and only modules that exist."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("| "))
    named = set(re.findall(r"`(\w+)\.py`", table))
    modules = {p.stem for p in (ROOT / "bpo_classify").glob("*.py") if not p.stem.startswith("_")}
    assert named == modules, (sorted(modules - named), sorted(named - modules))
    for dotted in set(re.findall(r"`(\w+)\.(\w+)", section)):
        module, name = dotted
        if module in modules and name != "py":
            source = (ROOT / "bpo_classify" / f"{module}.py").read_text(encoding="utf-8")
            assert re.search(rf"^(def|class) {name}\b|^{name}\b", source, flags=re.M), dotted


if __name__ == "__main__":
    print(f"README.md: {rewrite_readme()} example output(s) rewritten")
