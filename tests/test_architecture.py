"""The shop's apps depend on each other downwards only (issue 14, /work/shared/design/house.md).

Every module of every shop app is parsed (``ast``, so imports inside functions count too, and
nothing is executed) and each import of another shop app is checked against ``ALLOWED``. An
arrow that goes up (``notifications`` reading orders, ``orders`` reading ``accounts``) fails the
test with the file and line; so does any cycle in the graph the imports draw. ``pharmacy`` is the
project package (settings, permissions, Celery), not a shop app, and may be imported by any app.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: app → the shop apps it may import. Arrows only go down.
ALLOWED: dict[str, set[str]] = {
    "catalog": set(),
    "notifications": set(),
    # The code rules sit below the cart (the cart asks them whether a code applies); the tax seam
    # implements the calculation module's interface. Both as issue 14 built them.
    "discounts": {"catalog"},
    "cart": {"catalog", "discounts"},
    "salestax": {"catalog", "cart"},
    "orders": {"cart", "catalog", "discounts", "salestax", "notifications"},
    "accounts": {"orders", "cart", "catalog", "notifications"},
}
APPS = set(ALLOWED)


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def imported_apps(path: Path, app: str) -> list[tuple[int, str]]:
    """(line, other shop app) for every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside the app
        for name in names:
            top = name.split(".")[0]
            if top in APPS and top != app:
                found.append((node.lineno, top))
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """app → other app → ["file:line", ...]."""
    graph: dict[str, dict[str, list[str]]] = {app: {} for app in APPS}
    for app in APPS:
        for path in _modules(app):
            for line, other in imported_apps(path, app):
                graph[app].setdefault(other, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


@pytest.mark.parametrize("app", sorted(APPS))
def test_an_app_imports_only_the_apps_below_it(app):
    upward = {
        other: where for other, where in import_graph()[app].items() if other not in ALLOWED[app]
    }
    assert not upward, f"{app} imports apps it must not: {upward}"


def test_the_app_graph_has_no_cycle():
    graph = {app: set(edges) for app, edges in import_graph().items()}
    done: set[str] = set()

    def visit(app: str, path: list[str]) -> None:
        if app in path:
            pytest.fail("import cycle: " + " → ".join(path[path.index(app):] + [app]))
        if app in done:
            return
        for other in sorted(graph[app]):
            visit(other, path + [app])
        done.add(app)

    for app in sorted(graph):
        visit(app, [])


def test_the_check_sees_an_upward_arrow_inside_a_function(tmp_path):
    """The checker itself: a lazy import in a function body is still an arrow."""
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from orders.models import Order\n    return Order\n")
    assert imported_apps(module, "notifications") == [(2, "orders")]


def test_order_emails_have_one_way_in():
    """Every order email is queued by ``orders.emails.order_email``; only it calls the outbox's
    ``email_queue`` (account emails use ``email_queue_message``, which calls it in turn)."""
    callers = []
    for app in APPS - {"notifications"}:
        for path in _modules(app):
            if path.relative_to(ROOT).as_posix() == "orders/emails.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
                if name in {"email_queue", "email_queue_digest"}:
                    callers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not callers, f"queue order emails through orders.emails.order_email: {callers}"


def test_accounts_use_the_orders_app_through_its_services_only():
    """Accounts never write an order or its events themselves: they import ``orders.services``
    (history, claim a guest order, signed links) and nothing else of orders."""
    used = []
    for path in _modules("accounts"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            )
            used += [f"{path.relative_to(ROOT)}:{node.lineno} {m}" for m in modules if m.split(".")[0] == "orders" and m != "orders.services"]
    assert not used, f"accounts reach into orders beyond its services: {used}"
