"""The structure checks: imports between files, packages and layers.

An AST walk over ``imiptools`` and ``imip_agent`` (no import is run) finds
every import of one of their modules and fails on:

- an import cycle between files;
- an import cycle between packages (each subpackage of ``imiptools``
  counted as one node, each top-level module of ``imiptools`` as one, and
  ``imip_agent`` as one);
- an import from a lower layer of :data:`LAYERS` to a higher one (a module
  that no layer names fails too: place it);
- an import inside a function or class, unless it is marked
  ``# lazy: REASON`` with a reason of :data:`LAZY_REASONS` (never a cycle
  to dodge): such an import is checked as if it stood at the top of its
  module, so it could be moved there without a cycle or a layer broken;
- ``importlib`` used to import a module by name (``importlib.metadata``
  for entry points is fine).

Besides, no backend class name (:data:`BACKEND_MODULES`) appears in the
code outside its backend's modules and the composition root.

``docs/architecture.md`` draws :data:`LAYERS`: it holds the block
:func:`diagram` renders, verbatim.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("imiptools", "imip_agent")

#: The layers, lowest first, each with the modules and packages it holds. A
#: module imports modules of its own layer or of lower ones, never of a
#: higher one. An entry names a module or a package (with everything in it);
#: the root ``imiptools`` names only its ``__init__``.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "imiptools",
            "imiptools.errors",
            "imiptools.deferred",
            "imiptools.digests",
            "imiptools.config",
            "imiptools.dates",
            "imiptools.fileutil",
            "imiptools.lock",
            "imiptools.i18n",
            "imiptools.addresses",
            "imiptools.periods",
            "imiptools.functionlines",
            "imiptools.initialise",
            "imiptools.outcomes",
            "imiptools.logcontext",
        ),
    ),
    ("mail", ("imiptools.mail",)),
    ("itip", ("imiptools.itip",)),
    (
        "stores",
        ("imiptools.stores", "imiptools.spool", "imiptools.pending", "imiptools.preferences_store"),
    ),
    ("records", ("imiptools.records",)),
    ("policy", ("imiptools.quota", "imiptools.scheduling", "imiptools.preferences")),
    ("handlers", ("imiptools.handlers", "imiptools.publishing")),
    ("agent", ("imiptools.agent",)),
    ("composition", ("imiptools.site", "imiptools.backends")),
    (
        "services",
        (
            "imiptools.views",
            "imiptools.maintenance",
            "imiptools.check",
            "imiptools.comparison",
            "imiptools.transfer",
            "imiptools.approvals",
            "imiptools.client",
            "imiptools.answering",
            "imiptools.countering",
        ),
    ),
    ("programs", ("imip_agent",)),
)

#: The reasons a function-level import may have (``# lazy: REASON``).
LAZY_REASONS = {
    "start-up": "imported when first needed, to keep the agents' start-up short",
}
_LAZY = re.compile(r"#\s*lazy:\s*(\S+)")

#: The modules of each backend (its classes are named nowhere else in the
#: code but in the composition root, :data:`COMPOSITION_ROOT`).
BACKEND_MODULES = {
    "file": (
        "imiptools.backends.file",
        "imiptools.stores.file",
        "imiptools.stores.filecheck",
        "imiptools.stores.bucketindex",
        "imiptools.quota.journal",
        "imiptools.preferences_store",
    ),
    "postgresql": (
        "imiptools.backends.postgresql",
        "imiptools.backends.postgresql.backend",
        "imiptools.backends.postgresql.ledger",
        "imiptools.backends.postgresql.outbox",
        "imiptools.backends.postgresql.periods",
        "imiptools.backends.postgresql.preferences",
        "imiptools.backends.postgresql.schema",
        "imiptools.backends.postgresql.session",
        "imiptools.backends.postgresql.store",
        "imiptools.backends.postgresql.text",
    ),
}
COMPOSITION_ROOT = "imiptools.site"
#: The tests that may name a backend's classes: the backend's own (its
#: contract subclasses and what only it can get wrong), the composition
#: root's, and this one. Every other test opens a site (``open_site``,
#: ``Agent.site()``) and uses the interfaces, so it holds for any backend.
OWN_TESTS = {
    "file": (
        "tests/stores/test_bucketindex.py",
        "tests/stores/test_file_store.py",
        "tests/stores/test_overlay.py",
        "tests/stores/test_symlinks.py",
        "tests/stores/test_transaction.py",
        "tests/quota/test_journal.py",
        "tests/quota/test_file_ledger.py",
        "tests/preferences/test_file_preferences.py",
        "tests/test_convergence.py",  # fault injection into the file store's writes
    ),
    "postgresql": (
        "tests/stores/test_pg_store.py",
        "tests/quota/test_pg_ledger.py",
        "tests/preferences/test_pg_preferences.py",
        "tests/postgresql/",
        "tests/hosts/",
    ),
}
COMPOSITION_TESTS = ("tests/test_site.py", "tests/test_architecture.py")
#: Where backend class names are looked for: the code, not the tests (a
#: backend's own tests and the suites' fixtures build its classes).
CODE = ("imiptools", "imip_agent", "tools", "benchmarks")


@dataclass(frozen=True)
class Import:
    """One import of a module of :data:`PACKAGES`."""

    source: str
    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of :data:`PACKAGES`, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str) -> str | None:
    """The module ``name`` is or is in (``a.b.C`` -> ``a.b``); None outside."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def _absolute(node: ast.ImportFrom, source: str) -> str:
    """The module an ImportFrom reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = source.split(".")
    if modules()[source].name != "__init__.py":
        package.pop()
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, node.module] if node.module else package)


def _targets(node: ast.Import | ast.ImportFrom, source: str) -> list[str]:
    """The modules of :data:`PACKAGES` an import statement imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _absolute(node, source)
        # ``from package import module`` imports the module, not the package's names.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
            for alias in node.names
        ]
    resolved = {_resolve(name) for name in names}
    return sorted(target for target in resolved if target and target != source)


def _walk(node: ast.AST, nested: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        yield child, inner
        yield from _walk(child, inner)


@cache
def imports() -> tuple[Import, ...]:
    """Every import of a module of :data:`PACKAGES` in them, at any depth."""
    found = []
    for source, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [Import(source, t, node.lineno) for t in _targets(node, source)]
    return tuple(found)


def nested_imports() -> list[str]:
    """Function-level imports of any module, as ``path:line: text``, with their
    ``# lazy:`` reason or none."""
    found = []
    for path in modules().values():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node, nested in _walk(ast.parse(text, str(path)), False):
            if nested and isinstance(node, (ast.Import, ast.ImportFrom)):
                line = lines[node.lineno - 1].strip()
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {line}")
    return found


def graph() -> dict[str, set[str]]:
    """Module -> modules it imports, function-level imports included (as if
    they stood at the top of their module)."""
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for item in imports():
        edges[item.source].add(item.target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """The node of ``module`` in the package graph."""
    parts = module.split(".")
    if parts[0] == "imiptools" and len(parts) > 2:
        return ".".join(parts[:2])
    if parts[0] == "imiptools" and len(parts) == 2 and (ROOT / "imiptools" / parts[1]).is_dir():
        return module
    return "imip_agent" if parts[0] == "imip_agent" else module


def layer_of(module: str) -> int | None:
    """The rank in :data:`LAYERS` of the most specific entry holding ``module``."""
    best: tuple[int, int] | None = None
    for rank, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            holds = module == entry or (entry != "imiptools" and module.startswith(entry + "."))
            if holds and (best is None or len(entry) > best[1]):
                best = (rank, len(entry))
    return None if best is None else best[0]


# -- the checks ----------------------------------------------------------------


def test_the_walk_sees_the_imports() -> None:
    edges = graph()
    assert "imiptools.scheduling.engine" in edges["imiptools.scheduling"]
    assert "imiptools.errors" in edges["imiptools.config"]
    assert "imiptools.scheduling.access" in edges["imiptools.scheduling.builtin"]


def test_no_import_cycle_between_files() -> None:
    assert cycles(graph()) == []


def test_no_import_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for item in imports():
        source, target = package_of(item.source), package_of(item.target)
        if source != target:
            edges.setdefault(source, set()).add(target)
    assert cycles(edges) == []


def test_every_module_has_a_layer() -> None:
    assert [name for name in modules() if layer_of(name) is None] == []


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    upwards = []
    for item in imports():
        source, target = layer_of(item.source), layer_of(item.target)
        assert source is not None and target is not None
        if target > source:
            upwards.append(
                f"{item.source}:{item.line} ({LAYERS[source][0]}) imports"
                f" {item.target} ({LAYERS[target][0]})"
            )
    assert upwards == []


def test_function_level_imports_are_marked_with_a_reason() -> None:
    unmarked = [
        line
        for line in nested_imports()
        if (match := _LAZY.search(line)) is None or match[1] not in LAZY_REASONS
    ]
    assert unmarked == [], f"move them to the top, or mark them # lazy: {sorted(LAZY_REASONS)}"


#: What imports a module by its name (a string), hiding the edge from this walk.
_BY_NAME = ("importlib", "importlib.util")


def _by_name(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name in _BY_NAME for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.module in _BY_NAME
    return isinstance(node, ast.Name) and node.id == "__import__"


def _eager_dataclass(node: ast.AST) -> bool:
    """``from dataclasses import dataclass`` or ``@dataclasses.dataclass``."""
    if isinstance(node, ast.ImportFrom) and node.module == "dataclasses":
        return any(alias.name == "dataclass" for alias in node.names)
    return isinstance(node, ast.Attribute) and node.attr == "dataclass"


def test_dataclasses_are_declared_deferred() -> None:
    """The library's dataclasses come from :mod:`imiptools.deferred` (made at
    their first instance, issue 15: half a millisecond a class at start-up)."""
    found = [
        f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        for name, path in modules().items()
        if name != "imiptools.deferred"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _eager_dataclass(node)
    ]
    assert found == []


def test_modules_are_not_imported_by_name() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _by_name(node)
    ]
    assert found == []


def _backend_classes() -> dict[str, str]:
    """Public class name -> backend, for every class a backend module defines."""
    classes = {}
    for backend, names in BACKEND_MODULES.items():
        for name in names:
            tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    classes[node.name] = backend
    return classes


def test_backend_classes_are_named_only_by_their_backend_and_the_composition_root() -> None:
    classes = _backend_classes()
    assert {"FileStore", "QuotaJournal", "PreferenceFiles", "FileBackend"} <= set(classes)
    assert {"PgStore", "PgLedger", "PgPreferences", "PgBackend"} <= set(classes)
    word = re.compile(r"\b(" + "|".join(sorted(classes)) + r")\b")
    found = []
    for top in CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            module = _module_name(path)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in word.finditer(line):
                    if module in (COMPOSITION_ROOT, *BACKEND_MODULES[classes[match[1]]]):
                        continue
                    found.append(f"{path.relative_to(ROOT)}:{number}: {match[1]}")
    assert found == []


def test_tests_name_backend_classes_only_in_the_backends_own_tests() -> None:
    """The grep of issue 13 over the tests: a backend's class names appear
    only in that backend's own tests (and the composition root's)."""
    classes = _backend_classes()
    word = re.compile(r"\b(" + "|".join(sorted(classes)) + r")\b")
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name.startswith(COMPOSITION_TESTS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in word.finditer(line):
                if not name.startswith(OWN_TESTS[classes[match[1]]]):
                    found.append(f"{name}:{number}: {match[1]}")
    assert found == [], "open a site (open_site, Agent.site()) instead"


# -- the layers in docs/architecture.md ----------------------------------------


def _shown(entry: str) -> str:
    """How the diagram shows an entry: a package as ``dir/``, a module as ``name.py``."""
    if entry == "imiptools":
        return "imiptools/__init__.py"
    path = ROOT / entry.replace(".", "/")
    if path.is_dir():
        return f"{entry.replace('.', '/')}/"
    return f"{entry.rpartition('.')[2]}.py"


def diagram(width: int = 88) -> str:
    """The layer diagram, highest layer first, as docs/architecture.md shows it."""
    lines: list[str] = []
    for name, entries in reversed(LAYERS):
        if lines:
            lines.append("      |")
        row = f"  {name:<14}"
        for shown in (_shown(entry) for entry in entries):
            if len(row) + 2 + len(shown) > width and row.strip() != name:
                lines.append(row.rstrip())
                row = " " * 16
            row += shown + "  "
        lines.append(row.rstrip())
    return "\n".join(lines) + "\n"


def test_the_architecture_page_draws_these_layers() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"```\n{diagram()}```\n" in page, "docs/architecture.md must show:\n" + diagram()


@pytest.mark.parametrize("name", [name for name, _ in LAYERS])
def test_the_architecture_page_describes_each_layer(name: str) -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"- **{name}**" in page


def test_ordered_scenes_stay_on_one_worker() -> None:
    """A test module played as one ordered scene (``test_1_...``,
    ``test_2_...`` over a module-scoped fixture) is one ``xdist_group``, so
    that ``--dist loadgroup`` (pyproject.toml) runs it on one worker, in
    order: spread over two workers, a later step meets a fresh scene."""
    numbered = re.compile(r"^def test_\d+_", re.MULTILINE)
    unmarked = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if numbered.search(text := path.read_text())
        and "pytestmark = pytest.mark.xdist_group(__name__)" not in text
    ]
    assert unmarked == []
