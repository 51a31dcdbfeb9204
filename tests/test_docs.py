"""Every code block in README.md and docs/*.md runs, so that no snippet rots.

- ```python blocks run, the blocks of one file in order and in one
  namespace (a later block uses the names an earlier one made), in a fresh
  working directory. The snippets train tiny models for an epoch on
  generated data, so each file takes seconds.
- ```console blocks are checked, not run: a shell command may take minutes
  (`make test`), install things or need files the snippet only names. Each
  `make X` must be a Makefile target, each `keras-lstm ...` line must parse
  with the CLI's own parser, and each `python path.py` must name a file of
  this repository. A command none of these rules knows fails the test: give
  it a rule here, or write the block as ```text.
- ```text blocks are illustrations (equations, layouts) and are not run.

Any other fence, a bare one included, fails: a snippet that cannot run
must say so by being ```text.
"""

import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Globbed, so pages added to docs/ later are run too.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "console", "text"}
# The pages hold at least this many python blocks (21 when this was
# written): a parser that silently finds none must fail, not pass.
MIN_PYTHON_BLOCKS = 15

FENCE = re.compile(
    r"^```(?P<lang>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S
)


def blocks(page):
    """`(language, code, line)` of every fenced block of `page`."""
    text = page.read_text()
    return [
        (
            match["lang"].strip(),
            match["body"],
            text.count("\n", 0, match.start()) + 2,
        )
        for match in FENCE.finditer(text)
    ]


def _name(page):
    return str(page.relative_to(ROOT))


PYTHON_PAGES = [
    page for page in PAGES if any(lang == "python" for lang, *_ in blocks(page))
]


def test_every_block_says_what_it_is():
    unknown = [
        f"{_name(page)}:{line}: ```{lang}"
        for page in PAGES
        for lang, _, line in blocks(page)
        if lang not in LANGUAGES
    ]
    assert not unknown, (
        f"blocks must be one of {sorted(LANGUAGES)} (python runs, console "
        f"is checked, text is an illustration): {unknown}"
    )


def test_the_pages_hold_the_snippets():
    count = sum(
        lang == "python" for page in PAGES for lang, *_ in blocks(page)
    )
    assert count >= MIN_PYTHON_BLOCKS, (
        f"found {count} python blocks in {[_name(p) for p in PAGES]}"
    )
    assert ROOT / "README.md" in PYTHON_PAGES


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem}"}
    for lang, code, line in blocks(page):
        if lang != "python":
            continue
        # The file name and line in tracebacks point into the page.
        source = "\n" * (line - 1) + code
        exec(compile(source, str(page), "exec"), namespace)  # noqa: S102


def _make_targets():
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))


def _check_command(words, targets, parser):
    """Why the command `words` is wrong, or None."""
    # Leading VAR=value assignments set the environment only.
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    program, arguments = words[0], words[1:]
    if program == "make":
        missing = [a for a in arguments if "=" not in a and a not in targets]
        return f"no Makefile target {missing}" if missing else None
    if program == "keras-lstm":
        from keras_lstm.export import cli

        try:
            parser.parse_args(arguments)
        except (SystemExit, cli.UsageError) as error:
            return f"the keras-lstm parser refuses it: {error}"
        return None
    if re.fullmatch(r"(\S*/)?python(3(\.\d+)?)?", program):
        script = next((a for a in arguments if a.endswith(".py")), None)
        if script is None or not (ROOT / script).is_file():
            return f"no file {script} in the repository"
        return None
    return f"no rule checks `{program}`: add one, or write the block as text"


def test_console_blocks_name_what_exists(capsys):
    from keras_lstm.export import cli

    targets, parser = _make_targets(), cli.build_parser()
    checked, wrong = 0, []
    for page in PAGES:
        for lang, code, line in blocks(page):
            if lang != "console":
                continue
            for offset, text in enumerate(code.splitlines()):
                words = shlex.split(text, comments=True)
                if not words:
                    continue
                checked += 1
                problem = _check_command(words, targets, parser)
                if problem:
                    where = f"{_name(page)}:{line + offset}"
                    wrong.append(f"{where}: {text.strip()!r}: {problem}")
    capsys.readouterr()  # argparse's usage lines for refused commands
    assert not wrong, "\n".join(wrong)
    assert checked >= 5, f"only {checked} commands checked"


def test_module_map_names_every_module():
    page = (ROOT / "docs" / "modules.md").read_text()
    named = set(re.findall(r"`((?:keras_lstm|export)/[\w/]+\.py)`", page))
    modules = {
        str(path.relative_to(ROOT))
        for folder in ("keras_lstm", "export")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert not modules - named, f"not in docs/modules.md: {modules - named}"
    assert not named - modules, f"no such module: {named - modules}"


# Pages other branches were writing when the links to them were made; a
# link to one is checked as soon as the page exists.
PENDING_PAGES = {"docs/speed.md", "docs/variants.md"}


def test_relative_links_reach_a_file():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            path = (page.parent / target).resolve()
            name = str(path.relative_to(ROOT)) if ROOT in path.parents else ""
            if not path.exists() and name not in PENDING_PAGES:
                broken.append(f"{_name(page)}: {target}")
    assert not broken, broken
