"""The import graph of `keras_lstm` and `keras_lstm.export`, read with `ast`.

Two rules keep the export pipeline readable top-down:

- the graph of imports between the package's modules has no cycle, so
  every module can be read after the ones it imports;
- no function imports another `keras_lstm.export` module: an import inside
  a function is how a cycle hides. Optional third-party packages (tfmot,
  tf_keras, tflite_micro, ethos-u-vela) may still be imported lazily, and
  so may the modules in `_OPTIONAL_GATEWAYS`, which import such a package
  at import time.

Imports are read from the source, not executed, so the graph also holds
the imports inside functions. Run this file as a script to print the
cycles and the imports inside functions.
"""

import ast
import dataclasses
import pathlib

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
# Where each package's sources live (export/ installs as keras_lstm.export).
PACKAGES = {
    "keras_lstm": REPOSITORY / "keras_lstm",
    "keras_lstm.export": REPOSITORY / "export",
}
EXPORT = "keras_lstm.export"

# Modules that import an optional extra at import time (pyproject.toml:
# `qat` is tfmot and tf_keras), so that others import them only lazily,
# when that extra is asked for.
_OPTIONAL_GATEWAYS = frozenset(
    {
        "keras_lstm.export.qat.layers",
        "keras_lstm.export.qat.selection",
    }
)

# Imports inside functions still to be removed, as (importing module,
# imported module). Each hides a cycle or an import the redesign of
# `to_tflite` (issue 20) removes; the test fails when one disappears, so
# empty this set as they go.
_KNOWN_FUNCTION_IMPORTS = frozenset()
"""Imports of export modules inside functions that are known and accepted:
none. An entry must exist in the code, so the list cannot go stale."""


@dataclasses.dataclass(frozen=True)
class Import:
    """One import of a package module by another.

    Attributes:
        source: The importing module, e.g. `"keras_lstm.export.tflite"`.
        target: The imported module (`from a import b` imports module `a.b`
            when there is one, else `a`).
        line: Line number in the source file.
        in_function: Whether the import runs inside a function body.
    """

    source: str
    target: str
    line: int
    in_function: bool


def modules() -> dict:
    """`{module name: path}` for every module of the two packages."""
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _package_of(module, path):
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _targets(node, module, path, known):
    """The package modules an `Import`, `ImportFrom` or call imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = _package_of(module, path)
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".rstrip(".")
        names = []
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            names.append(submodule if submodule in known else base)
    else:  # importlib.import_module("...") with a literal name
        names = [node.args[0].value]
    return [name for name in dict.fromkeys(names) if name in known]


def _is_import_module_call(node):
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def imports() -> list:
    """Every import of a package module by another, as `Import`s."""
    known = modules()
    found = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        inside = {
            id(inner)
            for function in functions
            for statement in function.body
            for inner in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if not isinstance(
                node, (ast.Import, ast.ImportFrom)
            ) and not _is_import_module_call(node):
                continue
            for target in _targets(node, module, path, known):
                if target != module:
                    found.append(
                        Import(module, target, node.lineno, id(node) in inside)
                    )
    return found


def cycles(edges) -> list:
    """Every elementary cycle of the graph `edges` (`(source, target)`s).

    Each cycle is a list of modules starting at its smallest name, closed
    by that name again; the list is sorted.
    """
    graph = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found = []

    def visit(start, node, path, on_path):
        for target in sorted(graph.get(node, ())):
            if target == start:
                found.append([*path, start])
            elif target > start and target not in on_path:
                on_path.add(target)
                visit(start, target, [*path, target], on_path)
                on_path.discard(target)

    for start in sorted(graph):
        visit(start, start, [start], {start})
    return sorted(found)


def function_imports(found) -> set:
    """`(source, target)` of imports of export modules inside functions."""
    return {
        (i.source, i.target)
        for i in found
        if i.in_function
        and (i.target == EXPORT or i.target.startswith(EXPORT + "."))
        and i.target not in _OPTIONAL_GATEWAYS
    }


def _describe(pairs, found):
    lines = {(i.source, i.target): i.line for i in found}
    return "\n".join(
        f"  {source} imports {target} inside a function "
        f"(line {lines[(source, target)]})"
        for source, target in sorted(pairs)
    )


def test_the_scan_finds_the_packages_and_their_imports():
    # A scan that reads nothing would pass every test below.
    known = modules()
    for name in (
        "keras_lstm.layers",
        "keras_lstm.export",
        "keras_lstm.export.tflite",
        "keras_lstm.export.runners.litert",
        "keras_lstm.export.qat.layers",
    ):
        assert name in known, name
    edges = {(i.source, i.target) for i in imports()}
    assert ("keras_lstm.export.tflite", "keras_lstm.export.lowering") in edges
    assert ("keras_lstm.export", "keras_lstm.export.tflite") in edges


def test_the_cycle_finder_names_each_cycle():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "c")]
    assert cycles(edges) == [["a", "b", "c", "a"], ["c", "d", "c"]]
    assert cycles([("a", "b"), ("b", "c")]) == []


def test_the_import_graph_has_no_cycle():
    found = imports()
    # The known function imports close cycles until their owner removes
    # them; every other edge counts.
    edges = {
        (i.source, i.target)
        for i in found
        if (i.source, i.target) not in _KNOWN_FUNCTION_IMPORTS
    }
    loops = cycles(edges)
    assert not loops, "Import cycles:\n" + "\n".join(
        "  " + " -> ".join(loop) for loop in loops
    )


def test_no_function_imports_an_export_module():
    found = imports()
    offenders = function_imports(found) - _KNOWN_FUNCTION_IMPORTS
    assert not offenders, (
        "Import these at the top of the module (a function import hides "
        "a cycle):\n" + _describe(offenders, found)
    )


def test_the_optional_gateways_are_modules():
    missing = _OPTIONAL_GATEWAYS - set(modules())
    assert not missing, f"No such modules: {sorted(missing)}"


def test_every_known_function_import_still_exists():
    # Remove an entry from _KNOWN_FUNCTION_IMPORTS once its import is gone,
    # so that the list cannot go stale.
    stale = _KNOWN_FUNCTION_IMPORTS - function_imports(imports())
    assert not stale, f"No longer imported inside a function: {sorted(stale)}"


if __name__ == "__main__":
    found = imports()
    every_edge = {(i.source, i.target) for i in found}
    loops = cycles(every_edge)
    print(f"{len(loops)} import cycles (imports inside functions included):")
    for loop in loops:
        print("  " + " -> ".join(loop))
    inside = function_imports(found)
    print(f"{len(inside)} imports of export modules inside functions:")
    print(_describe(inside, found))
