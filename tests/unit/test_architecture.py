"""House rules that keep the layers apart."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import codescan

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit() -> None:
    library = ROOT / "core" / "shadowtutor"
    offenders = [p for p in library.rglob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_never_render_html() -> None:
    offenders = [
        p.name for p in (ROOT / "pages").glob("*.py") if "unsafe_allow_html" in p.read_text()
    ]
    assert offenders == []


def test_every_registered_page_exists_and_guards_itself() -> None:
    from shadowtutor.app.registry import PAGES

    for spec in PAGES:
        source = (ROOT / spec.path).read_text()
        assert f'auth.guard("{spec.key}")' in source, f"{spec.path} must call auth.guard first"


# --- the import graph of the library ------------------------------------------------------

LIBRARY = ROOT / "core" / "shadowtutor"
# Where the project's own code lives: the library, and what imports it by name.
OWN_CODE = [LIBRARY, ROOT / "app", ROOT / "pages", ROOT / "bench", ROOT / "tests"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in LIBRARY.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import that runs, at module level or inside a function (imports under
    ``if TYPE_CHECKING:`` never run, so they make no cycle)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules ``module`` imports (a package's ``__init__`` is the package)."""
    targets = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def _import_graph() -> dict[str, set[str]]:
    modules = _library_modules()
    return {m: _imported(m, p, modules) for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _package(module: str) -> str:
    """``shadowtutor.collect.proxy`` -> ``collect``; a top-level module is its own room."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_cycle_between_packages() -> None:
    assert _cycles(_rooms()) == []


def _rooms() -> dict[str, set[str]]:
    """Each package of the library and the packages it imports."""
    rooms: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        here = _package(module)
        rooms.setdefault(here, set()).update(t for t in map(_package, targets) if t != here)
    return rooms


def _documented_rooms() -> dict[str, set[str]]:
    """docs/architecture.md's table: package -> the packages it may import."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("<!-- rooms-table -->")[1].split("<!-- /rooms-table -->")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("|")]
    documented = {}
    for row in rows:
        package, _holds, may = (c.strip() for c in row.strip().strip("|").split("|"))
        documented[package.strip("`")] = {m.strip().strip("`") for m in may.split(",") if m}
    return documented


def test_every_package_imports_only_what_the_architecture_page_allows() -> None:
    rooms, documented = _rooms(), _documented_rooms()
    missing = sorted(set(rooms) - set(documented) - {"shadowtutor"})
    assert missing == [], f"packages not named in docs/architecture.md: {missing}"
    unknown = sorted(set(documented) - set(rooms))
    assert unknown == [], f"docs/architecture.md names packages that do not exist: {unknown}"
    extra = {p: sorted(rooms[p] - documented[p]) for p in documented if rooms[p] - documented[p]}
    assert extra == {}, f"imports the architecture page does not allow: {extra}"


def test_no_import_cycle_inside_a_package() -> None:
    graph = _import_graph()
    inside = {m: {t for t in ts if _package(t) == _package(m)} for m, ts in graph.items()}
    assert _cycles(inside) == []


def test_no_aliases_of_the_projects_own_modules() -> None:
    """Code reads file names: ``from shadowtutor.review import sampling``, never
    ``... import pick as sampling`` (nor ``import shadowtutor.x as y``)."""
    offenders = []
    for folder in OWN_CODE:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    own = [a for a in node.names if a.name.split(".")[0] == "shadowtutor"]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    own = node.names if (node.module or "").split(".")[0] == "shadowtutor" else []
                else:
                    own = []
                offenders += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {a.name} as {a.asname}"
                    for a in own
                    if a.asname and a.asname != a.name
                ]
    assert offenders == []


# Session methods that write (not `merge`: views join DataFrames); a view-model only reads.
WRITE_METHODS = {"add", "add_all", "commit", "delete", "flush", "bulk_save_objects"}
WRITE_STATEMENTS = {"insert", "update", "delete"}


def _view_writes(path: Path, writes: set[tuple[str, str]]) -> list[str]:
    tree = ast.parse(path.read_text())
    modules = _library_modules()
    bound: dict[str, str] = {}  # local name -> library module it names
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                name = a.asname or a.name
                if f"{node.module}.{a.name}" in modules:
                    bound[name] = f"{node.module}.{a.name}"
                elif (node.module, a.name) in writes:
                    found.append(f"imports the write {node.module}.{a.name}")
                elif node.module.split(".")[0] in ("sqlalchemy", "sqlmodel") and (
                    a.name in WRITE_STATEMENTS
                ):
                    found.append(f"imports {node.module}.{a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in WRITE_METHODS:
                found.append(f"line {node.lineno}: .{node.func.attr}(")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (bound.get(node.value.id), node.attr) in writes
        ):
            found.append(f"line {node.lineno}: calls the write {node.value.id}.{node.attr}")
    return found


def test_views_never_write() -> None:
    writes = codescan.permission_checked()
    offenders = {
        path.name: found
        for path in sorted((LIBRARY / "views").glob("*.py"))
        if (found := _view_writes(path, writes))
    }
    assert offenders == {}
