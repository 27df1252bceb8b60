"""No module but the calculation module adds an order's money together (issue 14).

A deliberately simple AST check: in the shop's apps, a ``+``/``-`` or a ``sum(...)`` whose operand
reads a money-looking name (``total``, ``shipping``, ``.amount``…) is reported, unless it is in
the calculation module itself or on the short list below, each with its reason. It cannot see
everything (an amount renamed ``x`` escapes it), but it fails the day someone writes
``order.subtotal + order.shipping`` in a view, a service or an email builder again.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts",
    "cart",
    "catalog",
    "orders",
    "notifications",
    "pharmacy",
    "discounts",
    "salestax",
)
MONEY_NAMES = {
    "amount",
    "total",
    "subtotal",
    "shipping",
    "tax",
    "discount",
    "savings",
    "line_total",
    "unit_price",
    "price",
    "amount_captured",
    "amount_refunded",
    "list_price",
    "per_pill",
    "refunded",
    "net_total",
}
# Files allowed to do money arithmetic, and why.
ALLOWED = {
    "cart/calculations.py": "the calculation module: an order's money",
    "catalog/pricing.py": "a pack's price maths (per pill, list price, saving): what line totals are built from",
    "catalog/services.py": "staff's price-change tool: a new catalog price, not an order's money",
    "catalog/management/commands/generate_catalog.py": "demo catalog generator",
    "payments/stripe_gateway.py": "reads Stripe's refund report in integer minor units",
}


def _moneyish(node) -> bool:
    return any(
        (isinstance(n, ast.Attribute) and n.attr in MONEY_NAMES)
        or (isinstance(n, ast.Name) and n.id in MONEY_NAMES)
        for n in ast.walk(node)
    )


def money_sums(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            if _moneyish(node.left) or _moneyish(node.right):
                found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "sum"
            and any(_moneyish(arg) for arg in node.args)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_catches_money_added_up_elsewhere():
    assert money_sums("total = order.subtotal + order.shipping")
    assert money_sums("x = sum(line.line_total.amount for line in lines)")
    assert money_sums("left = order.amount_captured - order.amount_refunded")
    assert not money_sums("count = sum(line.packages for line in lines)")


def test_no_module_but_the_calculation_module_sums_money():
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")) if (ROOT / app).exists() else []:
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in ALLOWED:
                continue
            offenders += [
                f"{relative}:{line}: {text}" for line, text in money_sums(path.read_text())
            ]
    assert offenders == [], "Add money up in cart.calculations:\n" + "\n".join(offenders)
