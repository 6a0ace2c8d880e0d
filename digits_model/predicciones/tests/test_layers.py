"""Imports run down the layers: interfaces -> services/selectors -> prediction_log, readiness,
serving -> options, ml/models/storage/exceptions.

Every import in the app is read from the source (those inside functions too), so a lazy
import cannot hide a dependency that runs up a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[1]
APP = APP_DIR.name

#: The interface modules: nothing below them may import them.
INTERFACES = (
    f"{APP}.apis",
    f"{APP}.views",
    f"{APP}.urls",
    f"{APP}.metrics",
    f"{APP}.middleware",
    f"{APP}.dashboard",
    f"{APP}.exception_handler",
    f"{APP}.management",
)

#: What services and selectors build on: it imports neither them nor an interface.
LOWER = (f"{APP}.services", f"{APP}.selectors", *INTERFACES)

#: Module (or package) prefix -> prefixes it must not import.
FORBIDDEN = {
    # The service never imports what only the tests, the bench and the experiments use.
    APP: ("harness", "bench", "experiments"),
    f"{APP}.ml": ("django", "rest_framework", f"{APP}.", "boto3"),
    f"{APP}.services": INTERFACES,
    f"{APP}.selectors": (f"{APP}.services", *INTERFACES),
    f"{APP}.prediction_log": (f"{APP}.serving", *LOWER),
    f"{APP}.readiness": (f"{APP}.prediction_log", f"{APP}.serving", *LOWER),
    f"{APP}.serving": (f"{APP}.prediction_log", f"{APP}.readiness", *LOWER),
    f"{APP}.options": (
        f"{APP}.models",
        f"{APP}.storage",
        f"{APP}.prediction_log",
        f"{APP}.readiness",
        f"{APP}.serving",
        *LOWER,
    ),
    f"{APP}.storage": (f"{APP}.",),
    f"{APP}.models": (f"{APP}.", "rest_framework"),
    f"{APP}.exceptions": (f"{APP}.",),
    # Thin interfaces: they read and write through selectors and services, not the ORM.
    **dict.fromkeys((f"{APP}.apis", f"{APP}.views", f"{APP}.metrics"), (f"{APP}.models",)),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, wherever in the file the import stands."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            names.add(target)
            # ``from . import selectors`` imports a module, not a name.
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def app_modules() -> list[Path]:
    return sorted(
        path
        for path in APP_DIR.rglob("*.py")
        if not {"tests", "migrations"} & set(path.relative_to(APP_DIR).parts)
    )


def violations(path: Path) -> list[str]:
    module = module_name(path)
    found = []
    for owner, forbidden in FORBIDDEN.items():
        if module != owner and not module.startswith(owner + "."):
            continue
        for name in sorted(imported_names(path)):
            for prefix in forbidden:
                hit = (
                    name.startswith(prefix)
                    if prefix.endswith(".")
                    else (name == prefix or name.startswith(prefix + "."))
                )
                if hit and not (owner == f"{APP}.ml" and name.startswith(f"{APP}.ml")):
                    found.append(f"{module} imports {name}")
    return found


@pytest.mark.parametrize("path", app_modules(), ids=lambda path: module_name(path))
def test_no_import_runs_up_a_layer(path):
    assert violations(path) == []


def test_the_check_sees_a_lazy_import_up_a_layer(tmp_path, monkeypatch):
    services = tmp_path / APP / "services"
    services.mkdir(parents=True)
    bad = services / "bad.py"
    bad.write_text("def f():\n    from ..management.commands.retrain import x\n")
    monkeypatch.setattr(f"{__name__}.APP_DIR", tmp_path / APP)
    assert violations(bad) == [
        f"{APP}.services.bad imports {APP}.management.commands.retrain",
        f"{APP}.services.bad imports {APP}.management.commands.retrain.x",
    ]


def test_the_prediction_log_package_has_no_import_cycle():
    package = f"{APP}.prediction_log"
    modules = {
        module_name(path): path for path in app_modules() if module_name(path).startswith(package)
    }
    graph = {
        name: {other for other in imported_names(path) if other in modules and other != name}
        for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " -> ".join([*trail, name])
        if name not in done:
            for other in graph[name]:
                visit(other, (*trail, name))
            done.add(name)

    for name in graph:
        visit(name, ())
    assert len(graph) > 5  # the check saw the package
