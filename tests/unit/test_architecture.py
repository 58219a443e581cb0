"""Dependencies point one way: pages -> core.services -> core.domain. core/ never imports
streamlit; core/domain does no I/O (standard library computation, numpy, core.money/errors)."""

import ast
import sys
from pathlib import Path

from tests.support import ROOT

DOMAIN_MAY_IMPORT = {
    "__future__",
    "dataclasses",
    "datetime",
    "enum",
    "collections",
    "typing",
    "functools",
    "itertools",
    "math",
    "numpy",
    "hashlib",  # hashing bytes in memory (the audit chain)
    "json",  # canonical encoding in memory, never files
    "re",  # matching text in memory (payout accounts)
    "csv",  # splitting and quoting lines held in memory (settlement statements), never files
    "decimal",  # exact figures typed in the pricing lab's editors
    "difflib",  # comparing two documents held in memory (what a pricing approver reads)
    "unicodedata",  # normalising what people type
    "ipaddress",  # parsing addresses in memory (device and client keys)
    "core",
}
DOMAIN_CORE_MODULES = ("core.domain", "core.money", "core.errors")
IO_CALLS = {"open", "input", "print", "exec", "eval", "__import__"}


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_core_never_imports_streamlit():
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.glob("core/**/*.py")
        if any(m == "streamlit" or m.startswith("streamlit.") for m in imports(p))
    ]
    assert offenders == []


def test_domain_imports_only_pure_modules():
    files = list(ROOT.glob("core/domain/*.py"))
    assert len(files) >= 5
    for path in files:
        for module in imports(path):
            top = module.split(".")[0]
            assert top in DOMAIN_MAY_IMPORT, f"{path.name} imports {module}"
            if top == "core":
                assert module.startswith(DOMAIN_CORE_MODULES), f"{path.name} imports {module}"


def test_domain_calls_no_io_builtins():
    for path in ROOT.glob("core/domain/*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & IO_CALLS, f"{path.name} calls {calls & IO_CALLS}"


#: The one page module that reaches the wiring: it hands every page the portal's services.
SERVICES_HANDLE = Path("pages/_ui/session.py")


def test_pages_reach_the_core_only_through_services_and_shared_types():
    """Every file under pages/ (the pages and their shared pieces in pages/_ui/) and the frame."""
    paths = [*ROOT.glob("pages/**/*.py"), ROOT / "streamlit_app.py"]
    assert any(path.parent.name == "_ui" for path in paths)  # the shared pieces are covered too
    for path in paths:
        handle = path.relative_to(ROOT) == SERVICES_HANDLE
        forbidden = ("core.adapters",) if handle else ("core.adapters", "core.bootstrap")
        for module in imports(path):
            assert not module.startswith(forbidden), f"{path.relative_to(ROOT)} imports {module}"


def test_money_and_errors_are_pure_too():
    for name in ("money.py", "errors.py"):
        for module in imports(ROOT / "core" / name):
            assert module.split(".")[0] in DOMAIN_MAY_IMPORT | {"re", "unicodedata", "decimal"}, module
    assert sys.version_info >= (3, 11)


def test_tests_share_helpers_through_tests_support_only():
    """A test module never imports another test module or a conftest (pytest finds fixtures by
    itself); what tests share lives in tests/support/, which imports no test module either."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in ROOT.glob("tests/**/*.py")
        for module in imports(path)
        if module.split(".")[0] in ("tests", "conftest") and not module.startswith("tests.support")
    ]
    assert offenders == []


#: The entry points: the command line. (The server, app.py, lives outside core/.)
ENTRY_POINTS = ("core/__main__.py", "core/cli/")


def test_only_the_entry_points_reach_the_wiring():
    """core.bootstrap builds everything; nothing it builds may reach back up to it."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.glob("core/**/*.py")
        if path.name != "bootstrap.py"
        and not str(path.relative_to(ROOT)).startswith(ENTRY_POINTS)
        and any(module == "core.bootstrap" for module in imports(path))
    ]
    assert offenders == []


#: Pages anyone may open: their fragments show the same to everyone and act for nobody.
PUBLIC_PAGES = {Path("pages/compare.py")}


def test_every_fragment_of_a_signed_in_page_checks_the_sign_in_first():
    """A fragment reruns alone, without the frame that checks the sign-in on a whole run
    (`pages._ui.auth.fragment_signed_in`)."""
    found = []
    for path in ROOT.glob("pages/**/*.py"):
        if path.relative_to(ROOT) in PUBLIC_PAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            decorators = node.decorator_list if isinstance(node, ast.FunctionDef) else []
            if not any("fragment" in ast.unparse(d) for d in decorators):
                continue
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            first = ast.unparse(body[0]) if body else ""
            assert isinstance(node, ast.FunctionDef)
            found.append(path.name)
            assert first == "fragment_signed_in()", f"{path.relative_to(ROOT)}: {node.name} starts with {first!r}"
    assert len(found) >= 3
