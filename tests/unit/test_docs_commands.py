"""The README and docs/ show only commands that work, links that resolve and one layer order.

Every ``fashiontag`` command in a shell block of README.md or docs/*.md is parsed by the real
command line parser (so an unknown subcommand, flag or choice fails here), and every subcommand
they use has its ``--help`` run in-process; commands quoted inline in the prose must name real
subcommands and flags; ``make`` targets and variables must exist in the Makefile; relative links
(and their #anchors) must point at files of the repository; the README stays a short front door;
its layer list is the import contract's; code comments cite only files of the repository.
Everything runs in-process: no subprocess per command.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from fashiontag.cli import build_parser, main
from tests.conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose links are checked too (they are linked from the docs).
LINKED_PAGES = [*PAGES, ROOT / "benchmarks" / "README.md", ROOT / "docker" / "README.md"]
README_LIMIT = 12 * 1024
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FASHIONTAG = {"fashiontag", ".venv/bin/fashiontag"}
PYTHONS = {"python", "python3", ".venv/bin/python"}
SEPARATORS = {"|", "||", "&&", ";", "&"}
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    tokens: tuple[str, ...]
    block_env: frozenset[str]  # variables the block exports or sets before the command

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {' '.join(self.tokens)}"


def _split_fences(text: str) -> tuple[list[tuple[str, int, list[str]]], str]:
    """(fenced blocks as (language, first line number, lines), the prose with blocks blanked)."""
    blocks, prose, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line.strip())
        if current is None and match:
            current = (match.group(1).lower(), number + 1, [])
            prose.append("")
        elif current is not None and line.strip() == "```":
            blocks.append(current)
            current = None
            prose.append("")
        elif current is not None:
            current[2].append(line)
            prose.append("")
        else:
            prose.append(line)
    assert current is None, "unclosed code block"
    return blocks, "\n".join(prose)


def _shell_commands(page: Path) -> list[Command]:
    """Each simple command of the page's shell blocks, comments, redirections and `&` removed."""
    commands = []
    blocks, _ = _split_fences(page.read_text())
    for lang, first, lines in blocks:
        if lang not in SHELL_LANGS:
            continue
        env: set[str] = set()
        joined, start = "", None
        for number, line in enumerate(lines, first):
            start = number if not joined else start
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            tokens, joined = shlex.split(joined + line, comments=True), ""
            simple: list[str] = []
            for token in [*tokens, ";"]:
                if token not in SEPARATORS:
                    simple.append(token)
                    continue
                while simple and re.fullmatch(r"(export )?[A-Z_][A-Z0-9_]*=.*", simple[0]):
                    env.add(simple.pop(0).split("=", 1)[0])
                if simple[:1] == ["export"]:
                    env.update(t.split("=", 1)[0] for t in simple[1:])
                    simple = []
                for i, t in enumerate(simple):  # drop redirections: `> file`, `2>/dev/null`
                    if re.fullmatch(r"\d?>>?", t) or re.fullmatch(r"\d?>>?\S+", t):
                        simple = simple[:i]
                        break
                if simple:
                    commands.append(Command(page, start, tuple(simple), frozenset(env)))
                simple = []
    return commands


def _fashiontag_argv(tokens: tuple[str, ...]) -> list[str] | None:
    if tokens[0] in FASHIONTAG:
        return list(tokens[1:])
    if tokens[0] in PYTHONS and tokens[1:3] == ("-m", "fashiontag"):
        return list(tokens[3:])
    return None


def _all_commands() -> list[Command]:
    return [c for page in PAGES for c in _shell_commands(page)]


def _inline_spans(page: Path) -> list[str]:
    _, prose = _split_fences(page.read_text())
    return [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _resolve(parser: argparse.ArgumentParser, argv: list[str]):
    """(subcommand path, its parser) for the leading subcommand words of argv."""
    path, current = [], parser
    for word in argv:
        subs = _subparsers(current)
        if word not in subs:
            break
        path.append(word)
        current = subs[word]
    return tuple(path), current


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for action in p._actions for o in action.option_strings}


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | None:
    """The parsed namespace; None for --help (which argparse answers by exiting 0)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            return None
        raise AssertionError(err.getvalue().strip()) from None


def test_the_pages_show_fashiontag_and_make_commands():
    commands = _all_commands()
    assert sum(_fashiontag_argv(c.tokens) is not None for c in commands) >= 20
    assert {("make", "run"), ("make", "test")} <= {c.tokens[:2] for c in commands
                                                   if c.page == README}


def test_every_shown_fashiontag_command_parses(parser):
    failures = []
    for command in _all_commands():
        argv = _fashiontag_argv(command.tokens)
        if argv is None:
            continue
        try:
            args = _parse(parser, argv)
        except AssertionError as exc:
            failures.append(f"{command}\n    {exc}")
            continue
        if args is not None and getattr(args, "model_control", None) == "explicit":
            # model control needs the operator's key: the shown form must carry one
            if args.admin_key_file is None and "FASHIONTAG_ADMIN_KEY" not in command.block_env:
                failures.append(f"{command}\n    --model-control explicit without an admin key")
    assert not failures, "\n".join(failures)


def test_help_of_every_subcommand_shown_runs(parser, capsys):
    """The cheap commands run for real, in-process: ``--help`` of each subcommand used, whose
    text must list every flag the pages pass to it."""
    used: dict[tuple[str, ...], set[str]] = {}
    for command in _all_commands():
        argv = _fashiontag_argv(command.tokens)
        if argv is None:
            continue
        path, _ = _resolve(parser, argv)
        used.setdefault(path, set()).update(
            a.split("=", 1)[0] for a in argv[len(path):] if a.startswith("--"))
    assert () in used and ("tag",) in used
    for path, flags in sorted(used.items()):
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0, path
        shown = capsys.readouterr().out
        assert shown.startswith("usage: fashiontag"), path
        missing = {f for f in flags - {"--help"} if f not in shown}
        assert not missing, f"fashiontag {' '.join(path)} --help does not list {missing}"


def test_fewshot_versions_runs_as_shown(capsys):
    """The one documented command that needs no server and no training: it reads the built
    repository's version list."""
    shown = [c for c in _all_commands() if _fashiontag_argv(c.tokens) == ["fewshot", "versions"]]
    assert shown, "docs no longer show `fashiontag fewshot versions`"
    if not (ROOT / "model_repository" / "fashiontag_attributes" / "config.pbtxt").exists():
        pytest.skip("model_repository/ is not built yet (make model)")
    assert main(["fewshot", "versions"]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"^\*\s+\d+\s", listed, re.M), f"no served version marked: {listed!r}"
    assert "category" in listed  # the garment type is an attribute of every version


def test_inline_fashiontag_commands_name_real_subcommands_and_flags(parser):
    failures = []
    for page in PAGES:
        for span in _inline_spans(page):
            words = span.split()
            if words[0] not in FASHIONTAG or len(words) == 1:
                continue
            path, sub = _resolve(parser, words[1:])
            if not path and not words[1].startswith("-"):
                failures.append(f"{page.name}: `{span}`: no subcommand {words[1]!r}")
                continue
            rest = " ".join(words[1 + len(path):])
            unknown = set(re.findall(r"--[a-z][a-z0-9-]*", rest)) - _options(sub)
            if unknown:
                failures.append(f"{page.name}: `{span}`: unknown {sorted(unknown)}")
    assert not failures, "\n".join(failures)


def _make_targets() -> tuple[set[str], str]:
    text = (ROOT / "Makefile").read_text()
    targets = set()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.$()/ -]+?)\s*:(?!=)", line)
        if match and not line.startswith("\t"):
            targets.update(match.group(1).split())
    return targets, text


def test_every_make_command_names_a_target_and_variables_the_makefile_reads():
    targets, text = _make_targets()
    shown = [c.tokens[1:] for c in _all_commands() if c.tokens[0] == "make"]
    shown += [tuple(s.split()[1:]) for page in PAGES for s in _inline_spans(page)
              if s.startswith("make ")]
    assert shown
    failures = []
    for words in shown:
        for word in words:
            if "=" in word:
                name = word.split("=", 1)[0]
                if f"$({name})" not in text:
                    failures.append(f"make {' '.join(words)}: the Makefile never reads {name}")
            elif word not in targets:
                failures.append(f"make {' '.join(words)}: no target {word!r}")
    assert not failures, "\n".join(failures)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    _, prose = _split_fences(page.read_text())
    seen: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6} +(.+?) *#*$", prose, re.M):
        slug = _slug(match.group(1))
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_every_relative_link_points_at_a_file_of_the_repository():
    failures = []
    for page in LINKED_PAGES:
        _, prose = _split_fences(page.read_text())
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not file.is_relative_to(ROOT) or not file.exists():
                failures.append(f"{where}: no such file in the repository")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                failures.append(f"{where}: no heading #{anchor}")
    assert not failures, "\n".join(failures)


def test_readme_is_a_short_front_door():
    text = README.read_text()
    assert len(text.encode()) <= README_LIMIT, f"README.md is {len(text.encode())} bytes"
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name}" in text, f"README.md does not link docs/{page.name}"
    for folder in ("fashiontag/", "studio/", "docs/", "benchmarks/", "docker/", "tests/"):
        assert folder in text, f"the README's layout leaves out {folder}"


def _contract_layers() -> tuple[str, list[set[str]]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    root = config["root_package"] + "."
    layers = [{m.strip().removeprefix(root) for m in layer.split("|")}
              for layer in contract["layers"]]
    return contract["name"], layers


def test_the_readme_tells_the_layer_order_the_import_contract_checks():
    name, layers = _contract_layers()
    text = README.read_text()
    after = text[text.index("**Layers.**"):]
    block = after[after.index("```\n") + 4:]
    block = block[:block.index("```")]
    shown = [{m.strip() for m in line.split("|")} for line in block.splitlines() if line.strip()]
    assert shown == layers, "README.md's layer list differs from pyproject.toml's contract"
    assert "->" not in name and "→" not in name, "the contract's name repeats the layer list"


#: notes that live next to the checkout, not in it (the data folder ../shared/datasets is a
#: place to look for photos, not a citation)
OUTSIDE = re.compile(r"(?:\.\./|/work/)shared(?!/datasets)")


def test_code_and_pages_cite_only_files_of_the_repository():
    failures = []
    for source in [*sorted((ROOT / "fashiontag").rglob("*.py")),
                   *sorted((ROOT / "benchmarks").rglob("*.py"))]:
        text = source.read_text()
        for cited in re.findall(r"(?<![\w/.])((?:docs|benchmarks|docker)/[\w./-]*\w)", text):
            if not (ROOT / cited).exists():
                failures.append(f"{source.relative_to(ROOT)} cites {cited}, which is missing")
        if OUTSIDE.search(text):
            failures.append(f"{source.relative_to(ROOT)} cites a file outside the repository")
    for page in LINKED_PAGES:
        if OUTSIDE.search(page.read_text()):
            failures.append(f"{page.relative_to(ROOT)} cites a file outside the repository")
    assert not failures, "\n".join(failures)
