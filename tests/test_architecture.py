"""The shop's apps depend on each other downwards only (issue 14, /work/shared/design/house.md).

Every module of every shop app is parsed (``ast``, so imports inside functions count too, and
nothing is executed) and each import of another shop app is checked against ``ALLOWED``. An
arrow that goes up (``notifications`` reading orders, ``orders`` reading ``accounts``) fails the
test with the file and line; so does any cycle in the graph the imports draw. ``pharmacy`` is the
project package (settings, permissions, Celery), not a shop app, and may be imported by any app.

Inside an app the same holds between modules: no module takes part in an import cycle with other
modules of its app, except a ``services`` ⇄ ``tasks`` pair (services queue Celery tasks, tasks
call services). And ``pharmacy`` stays the project package (settings, wiring, small helpers):
see ``test_pharmacy_holds_only_wiring_and_small_helpers``.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: app → the shop apps it may import. Arrows only go down.
ALLOWED: dict[str, set[str]] = {
    "catalog": set(),
    "notifications": set(),
    # The door to Stripe: amounts in minor units and ids in, states out; it knows no other app.
    "payments": set(),
    # The code rules sit below the cart (the cart asks them whether a code applies); the tax seam
    # implements the calculation module's interface. Both as issue 14 built them.
    "discounts": {"catalog"},
    "cart": {"catalog", "discounts"},
    "salestax": {"catalog", "cart"},
    "orders": {"cart", "catalog", "discounts", "salestax", "notifications", "payments"},
    # The page and the placing of an order: it writes the order through orders' services.
    "checkout": {"orders", "cart", "catalog", "discounts", "salestax", "payments"},
    # A pharmacist's decision acts on an order (captures or cancels its hold); an order reaches
    # its prescription step through the interface orders defines, never by importing upwards.
    "prescriptions": {
        "checkout",
        "orders",
        "cart",
        "catalog",
        "discounts",
        "salestax",
        "notifications",
        "payments",
    },
    "accounts": {"prescriptions", "orders", "cart", "catalog", "notifications"},
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
            pytest.fail("import cycle: " + " → ".join(path[path.index(app) :] + [app]))
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


def test_one_module_talks_to_stripe():
    """Only ``payments.stripe_gateway`` imports the ``stripe`` library: one place decides what
    leaves the shop (no medicine in a PaymentIntent) and bounds every call with a timeout."""
    importers = []
    for app in sorted(APPS) + ["pharmacy"]:
        for path in sorted((ROOT / app).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                if any(name.split(".")[0] == "stripe" for name in names):
                    importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["payments/stripe_gateway.py"]


def test_order_emails_have_one_way_in():
    """Every order email is queued by ``orders.emails.order_email``: no other module calls the
    outbox's ``email_queue`` about an order (``related=``) or a digest of orders (account emails
    use ``email_queue_message``; an app's emails about something else, such as auto-refill's
    about a prescription on file, call ``email_queue`` without an order)."""
    callers = []
    for app in APPS - {"notifications"}:
        for path in _modules(app):
            if path.relative_to(ROOT).as_posix() == "orders/emails.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else None
                )
                about_an_order = name == "email_queue" and any(
                    keyword.arg in ("related", None) for keyword in node.keywords
                )
                if name == "email_queue_digest" or about_an_order:
                    callers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not callers, f"queue order emails through orders.emails.order_email: {callers}"


def test_accounts_use_the_orders_app_through_its_services_only():
    """Accounts never write an order or its events themselves: they import ``orders.services``
    (history, claim a guest order, signed links) and nothing else of orders."""
    used = []
    for path in _modules("accounts"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            used += [
                f"{path.relative_to(ROOT)}:{node.lineno} {m}"
                for m in modules
                if m.split(".")[0] == "orders" and m != "orders.services"
            ]
    assert not used, f"accounts reach into orders beyond its services: {used}"


# --- Circles inside an app ---------------------------------------------------------------------

#: The one circle an app may hold: services hand work to Celery, the tasks call the services back.
ALLOWED_CIRCLE = {"services", "tasks"}


def module_name(path: Path) -> str:
    """``orders/services.py`` → ``orders.services``; a package's ``__init__`` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import of one of the ``known`` modules, at any depth, relative or
    absolute; ``from package import name`` counts as importing ``package.name`` when it is a module."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            )
            source = ".".join(base + ([node.module] if node.module else []))
            targets = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                for a in node.names
            ]
        else:
            continue
        yield from ((node.lineno, target) for target in targets if target in known)


def module_graph(app: str) -> dict[str, dict[str, int]]:
    """module → module of the same app it imports → the line of the (first) import."""
    paths = {module_name(path): path for path in _modules(app)}
    graph: dict[str, dict[str, int]] = {name: {} for name in paths}
    for name, path in paths.items():
        for line, target in imported_modules(path, set(paths)):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _allowed(circle: list[str], app: str) -> bool:
    return {name.removeprefix(f"{app}.") for name in circle} == ALLOWED_CIRCLE


def _forbidden_circles(app: str) -> list[str]:
    graph = module_graph(app)
    return [
        " ⇄ ".join(circle)
        + " ("
        + ", ".join(
            f"{a.removeprefix(app + '.')}→{b.removeprefix(app + '.')} line {graph[a][b]}"
            for a in circle
            for b in graph[a]
            if b in circle
        )
        + ")"
        for circle in circles(graph)
        if not _allowed(circle, app)
    ]


@pytest.mark.parametrize("app", sorted(APPS | {"pharmacy"}))
def test_no_circle_of_modules_inside_an_app(app):
    wrong = _forbidden_circles(app)
    assert not wrong, f"modules of {app} import each other in a circle: {wrong}"


def test_the_circle_check_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """The checker itself: a circle closed by an import inside a function, written relative, is
    found; a services ⇄ tasks pair is the one circle allowed."""
    app = tmp_path / "shop"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "a.py").write_text("from shop import b\n")
    (app / "b.py").write_text("def f():\n    from .a import x\n    return x\n")
    (app / "services.py").write_text("from . import tasks\n")
    (app / "tasks.py").write_text("from .services import run\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = circles(module_graph("shop"))
    assert found == [["shop.a", "shop.b"], ["shop.services", "shop.tasks"]]
    assert [_allowed(circle, "shop") for circle in found] == [False, True]


# --- The project package ------------------------------------------------------------------------

#: Modules of a shop app that ``pharmacy/urls.py`` may import to wire the site: URL confs, views
#: and sitemaps (what a root URLconf mounts), never models, services or forms.
WIRING = ("urls", "views", "sitemaps", "gauges")
#: The modules of ``pharmacy/`` that wire the apps together: the URLs, and the metrics endpoint
#: that reads the numbers each app exposes in its ``gauges`` module (house.md: "the app that owns
#: the numbers exposes them; pharmacy/ wires the endpoint").
WIRING_MODULES = ("pharmacy/urls.py", "pharmacy/metrics.py")
#: A shared helper in ``pharmacy/`` stays small (a few screens); ``settings.py`` is the one long file.
#: Counted as ``ruff format`` lays the code out: it was 200 in the hand-compact style, and formatting
#: made the same code about 30 % longer (``metrics.py``, the largest helper, went from 194 to 254 lines).
HELPER_MAX_LINES = 260


def _wiring(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last in WIRING or last.endswith("_urls")


def _absolute_imports(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _is_model(node: ast.AST) -> bool:
    bases = getattr(node, "bases", []) if isinstance(node, ast.ClassDef) else []
    names = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in bases]
    return any(name.endswith("Model") for name in names)


def _pharmacy_findings(path: Path) -> list[str]:
    """What in one module of ``pharmacy/`` breaks the rule below, as 'file:line what'."""
    where = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if _is_model(node):
            found.append(f"{where}:{node.lineno} defines a model ({node.name})")
        for module in _absolute_imports(node):
            wiring = where in WIRING_MODULES and _wiring(module)
            if module.split(".")[0] in APPS and not wiring:
                found.append(f"{where}:{node.lineno} imports {module}")
    lines = len(path.read_text().splitlines())
    if path.name != "settings.py" and lines > HELPER_MAX_LINES:
        found.append(f"{where} has {lines} lines (more than {HELPER_MAX_LINES})")
    return found


def test_pharmacy_holds_only_wiring_and_small_helpers():
    """``pharmacy/`` is the project package: settings, URL wiring, the Celery app and small shared
    helpers (cache, logging, middleware, permissions), which every app may import. The rule,
    checked on every module of ``pharmacy/`` (``ast``, imports at any depth):

    * no model: no ``models.py``, no ``migrations/``, no class whose base is named ``...Model``;
    * only the wiring modules (``WIRING_MODULES``: the URLs and the metrics endpoint) import a shop
      app, and only its wiring (``urls``, ``*_urls``, ``views``, ``sitemaps``, ``gauges``); every
      other module imports no shop app at all, so a helper here can never pull an app's models,
      services or forms below the apps that import it;
    * every module but ``settings.py`` is at most ``HELPER_MAX_LINES`` lines: a bigger one is a
      feature and belongs to the app whose feature it is.
    """
    package = ROOT / "pharmacy"
    data = [package / "models.py", package / "migrations"]
    wrong = [path.relative_to(ROOT).as_posix() for path in data if path.exists()]
    for path in sorted(package.rglob("*.py")):
        wrong += _pharmacy_findings(path)
    assert not wrong, "pharmacy/ holds more than wiring and small helpers: " + "; ".join(wrong)


# --- Markup lives in template files ------------------------------------------------------------

#: An element of a web page written in a Python string: ``<a href=``, ``</span>``, ``<script``…
HTML_TAG = re.compile(
    r"</?(a|p|div|span|strong|em|b|i|small|br|img|script|style|ul|ol|li|table|thead|tbody|tr|td|th"
    r"|form|input|button|label|select|option|textarea|section|article|header|footer|nav|main"
    r"|h[1-6])\b[^<>]*>",
    re.IGNORECASE,
)


def markup_in_python(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line`` of every string literal (docstrings aside) that holds an HTML element, and of
    every ``format_html`` call: both are markup written in Python."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: dict[str, None] = {}  # one entry per line, in order
    for node in ast.walk(tree):
        literal = (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and HTML_TAG.search(node.value)
        )
        call = isinstance(node, ast.Call) and getattr(
            node.func, "id", getattr(node.func, "attr", None)
        ) in ("format_html", "format_html_join")
        if literal or call:
            found[f"{path.relative_to(root)}:{node.lineno}"] = None
    return list(found)


def test_no_python_module_writes_html():
    """Markup lives in template files (issue 23): a page's HTML changes in one place, the template,
    never in a Python string beside it."""
    found = [
        where
        for app in sorted(APPS | {"pharmacy"})
        for path in _modules(app)
        for where in markup_in_python(path)
    ]
    assert not found, f"HTML written in Python: {found}"


def test_the_markup_check_sees_a_tag_in_a_string(tmp_path):
    module = tmp_path / "snippet.py"
    module.write_text(
        '"""A docstring may say <a href> freely."""\n'
        "from django.utils.html import format_html\n"
        'ROUTE = "<uuid:pk>/refund/"\n'
        "def link(url):\n"
        "    return format_html('{}', url)\n"
        "def row(x):\n"
        "    return f'<td class=\"n\">{x}</td>'\n"
    )
    found = markup_in_python(module, root=tmp_path)
    assert [where.split(":")[1] for where in found] == ["5", "7"]
