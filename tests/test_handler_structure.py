"""The handlers' shape (issue 13 item 4): one repository for every record,
no per-object state kept on a handler class, a dispatch table per class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from imiptools.handlers.base import BaseHandler, method_key
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.handlers.resource import ResourceHandler

HANDLERS = Path(__file__).resolve().parents[1] / "imiptools" / "handlers"
SOURCES = sorted(HANDLERS.glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_handlers_reach_no_store_but_through_the_records(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    reaching = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "store"
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert reaching == [], f"{path.name}: .store used on lines {reaching}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_handler_classes_have_no_mutable_class_defaults(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    mutable = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.Call)
    found = [
        f"{cls.name}, line {statement.lineno}"
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for statement in cls.body
        if isinstance(statement, ast.Assign | ast.AnnAssign)
        and isinstance(statement.value, mutable)
        and not _is_field(statement.value)
    ]
    assert found == []


def _is_field(value: ast.expr) -> bool:
    """``field(default_factory=...)`` of a dataclass: made anew per instance."""
    return isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "MappingProxyType")


def test_each_class_has_its_dispatch_table_built_once() -> None:
    assert ResourceHandler.methods[("VEVENT", "REQUEST")] is ResourceHandler.vevent_request
    assert ResourceHandler.methods[("VEVENT", "CANCEL")] is ResourceHandler.vevent_cancel
    assert ResourceHandler.methods[("VFREEBUSY", "REQUEST")] is BaseHandler.vfreebusy_request
    assert ("VEVENT", "REPLY") not in ResourceHandler.methods
    assert PersonHandler.methods[("VEVENT", "REPLY")] is PersonHandler.vevent_reply
    assert OutgoingHandler.methods[("VEVENT", "PUBLISH")] is OutgoingHandler.vevent_request
    assert BaseHandler.methods.keys() == {
        ("VEVENT", "CANCEL"),
        ("VFREEBUSY", "REQUEST"),
        ("VFREEBUSY", "REPLY"),
        ("VFREEBUSY", "PUBLISH"),
    }
    with pytest.raises(TypeError):
        ResourceHandler.methods[("VEVENT", "X")] = ResourceHandler.vevent_add  # type: ignore[index]
    assert method_key("vevent", "decline-counter") == ("VEVENT", "DECLINE_COUNTER")
