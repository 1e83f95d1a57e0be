"""Deferred dataclasses (:mod:`imiptools.deferred`, issue 15): the same
classes as :func:`dataclasses.dataclass` makes, made at first use.

Every library class is settled here, so that a mistake in a class's options,
which :func:`dataclasses.dataclass` would raise at the definition, still fails
the suite; and a run of the pipe program is shown to leave the classes its
message never uses unmade.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import marshal
import pkgutil
import subprocess
import sys
from dataclasses import field
from pathlib import Path

import pytest

import imip_agent
import imiptools
from imiptools import deferred
from imiptools.deferred import dataclass


@dataclass(frozen=True)
class Base:
    """A frozen class with a default."""

    name: str
    size: int = 1


@dataclass(frozen=True)
class Derived(Base):
    """A subclass adding a field with a factory and a post-init check."""

    tags: tuple[str, ...] = field(default_factory=tuple)
    secret: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("negative size")


@dataclass
class Mutable:
    """A mutable class: not hashable, assignable."""

    items: list[int] = field(default_factory=list)


@dataclass(frozen=True, order=True)
class Ordered:
    """An ordered class."""

    rank: int


def test_a_deferred_class_is_the_dataclass_it_declares() -> None:
    first, same = Derived("a", 2, ("x",), secret="s"), Derived("a", 2, ("x",))
    assert dataclasses.is_dataclass(Derived) and dataclasses.is_dataclass(Base)
    assert first == same and hash(first) == hash(same)
    assert repr(first) == "Derived(name='a', size=2, tags=('x',))"
    assert dataclasses.replace(first, size=3).size == 3
    assert [f.name for f in dataclasses.fields(Derived)] == ["name", "size", "tags", "secret"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "b"  # type: ignore[misc]
    with pytest.raises(ValueError, match="negative"):
        Derived("a", -1)
    with pytest.raises(TypeError):
        Base()  # type: ignore[call-arg]


def test_the_base_is_made_with_its_first_subclass() -> None:
    assert Base("b") == Base("b", 1) and Base("b") != Derived("b")
    assert Mutable() == Mutable([]) and Mutable.__hash__ is None
    changed = Mutable()
    changed.items = [1]
    assert changed == Mutable([1])
    assert sorted([Ordered(2), Ordered(1)]) == [Ordered(1), Ordered(2)]


def test_a_class_with_its_own_init_is_made_at_once() -> None:
    @dataclass(frozen=True)
    class Own:
        """Its own ``__init__``: nothing to defer."""

        value: int = 0

        def __init__(self) -> None:
            object.__setattr__(self, "value", 5)

    assert dataclasses.is_dataclass(Own) and Own().value == 5


def _library_modules() -> list[str]:
    names = []
    for package in (imiptools, imip_agent):
        prefix = package.__name__ + "."
        for module in pkgutil.walk_packages(package.__path__, prefix):
            names.append(module.name)
    return names


def test_every_library_class_settles() -> None:
    for name in _library_modules():
        importlib.import_module(name)
    deferred.settle_all()
    assert deferred.pending() == 0


def test_a_pipe_import_leaves_the_classes_unmade() -> None:
    """Importing the resource program makes none of the library's classes;
    each is made only when its first instance is."""
    script = (
        "import imip_agent.resource, imiptools.deferred as d, sys; "
        "print(d.pending(), sum(m.startswith('imiptools.') for m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    pending, modules = map(int, run.stdout.split())
    assert pending > 40 and modules > 40


def _twins(frozen: bool) -> tuple[type, type]:
    """The same class made by :mod:`imiptools.deferred` and by :mod:`dataclasses`."""

    def body() -> dict[str, object]:
        return {
            "__annotations__": {"name": "str", "tags": "tuple[str, ...]", "note": "str"},
            "__doc__": "A twin.",
            "tags": field(default_factory=tuple),
            "note": field(default="", repr=False, compare=False),
        }

    made = dataclass(frozen=frozen)(type("Twin", (), body()))
    plain = dataclasses.dataclass(frozen=frozen)(type("Twin", (), body()))
    return made, plain


@pytest.mark.parametrize("frozen", [True, False])
def test_equality_hash_and_repr_are_those_dataclasses_make(frozen: bool) -> None:
    made, plain = _twins(frozen)
    values = [("a", ("x",), "n"), ("a", ("x",), "m"), ("b", (), ""), ("a", (), "n")]
    ours = [made(*value) for value in values]
    theirs = [plain(*value) for value in values]
    for one, other in zip(ours, theirs, strict=True):
        assert repr(one) == repr(other)
    for i, j in [(i, j) for i in range(4) for j in range(4)]:
        assert (ours[i] == ours[j]) == (theirs[i] == theirs[j])
        assert (ours[i] != ours[j]) == (theirs[i] != theirs[j])
    assert (made.__hash__ is None) == (plain.__hash__ is None) == (not frozen)
    if frozen:
        assert hash(ours[0]) == hash(ours[1]) == hash(theirs[0])
    assert ours[0] != theirs[0] and ours[0].__eq__(theirs[0]) is NotImplemented


def test_a_recursive_repr_is_guarded() -> None:
    @dataclass
    class Node:
        """A node that may hold itself."""

        children: list[object] = field(default_factory=list)

    node = Node()
    node.children.append(node)
    assert repr(node).endswith(".Node(children=[...])")


def test_explicit_hashing_and_ordering_are_left_to_dataclasses() -> None:
    @dataclass(frozen=True)
    class Keyed:
        """A field left out of the hash only."""

        key: str
        weight: int = field(default=0, hash=False)

    assert Keyed("a", 1) != Keyed("a", 2) and hash(Keyed("a", 1)) == hash(Keyed("a", 2))
    assert Ordered(1) < Ordered(2) and Ordered(1) == Ordered(1)


def test_a_making_cut_short_leaves_the_class_as_declared() -> None:
    """A class whose options are wrong raises at each instantiation and stays
    as declared in between (in a child: it must never be settled here)."""
    script = """
from imiptools.deferred import dataclass
import imiptools.deferred as d

@dataclass(frozen=True, order=True)
class Broken:
    '''Ordered, with its own ordering: dataclasses refuses.'''
    rank: int
    def __lt__(self, other: object) -> bool:
        return False

declared = dict(Broken.__dict__)
for _ in range(2):
    try:
        Broken(1)
    except TypeError as exc:
        print(type(exc).__name__, "__lt__" in str(exc))
print(dict(Broken.__dict__) == declared, "__dataclass_fields__" in Broken.__dict__, d.pending())
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[:3] == ["TypeError True", "TypeError True", "True False 1"]


def test_after_settle_all_a_class_is_made_at_its_definition() -> None:
    """A long-running service settles everything before it serves; a module
    it imports later defers nothing (in a child: the switch is for good)."""
    script = """
import dataclasses
from imiptools import deferred
from imiptools.deferred import dataclass

@dataclass(frozen=True)
class Before:
    '''Defined before.'''
    value: int = 0

deferred.settle_all()

@dataclass(frozen=True)
class After:
    '''Defined after.'''
    value: int = 0

print(deferred.pending(), dataclasses.is_dataclass(After), After(1) == After(1), repr(After(2)))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["0", "True", "True", "After(value=2)"]


# -- the compiled methods' cache ------------------------------------------------

SOURCE = "def __create_fn__(x):\n def f(self):\n  return x\n return f"


def test_a_text_is_compiled_once_and_kept_for_the_next_process(tmp_path: Path) -> None:
    """What one process compiles, the next reads back instead of compiling;
    the code is that of ``exec(text)``."""
    path = tmp_path / "__pycache__" / deferred.CACHE_SUFFIX
    first = deferred._Codes(path)
    code = first.code(SOURCE)
    assert first.code(SOURCE) == code and first.new == 1
    first.save(always=True)
    assert path.is_file() and first.new == 0
    second = deferred._Codes(path)
    again = second.code(SOURCE)
    assert second.new == 0 and again == code
    namespace: dict[str, object] = {}
    exec(again, {}, namespace)
    function = namespace["__create_fn__"](42)  # type: ignore[operator]
    assert function(None) == 42


def test_a_cache_written_meanwhile_is_merged(tmp_path: Path) -> None:
    path = tmp_path / deferred.CACHE_SUFFIX
    one, other = deferred._Codes(path), deferred._Codes(path)
    one.code(SOURCE)
    other.code(SOURCE.replace("x", "y"))
    one.save(always=True)
    other.save(always=True)
    assert len(deferred._Codes(path).read()) == 2


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal", marshal.dumps(("another", 1, 0)), marshal.dumps((("x",), {1: 2}))],
)
def test_an_unusable_cache_is_a_miss(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / deferred.CACHE_SUFFIX
    path.write_bytes(content)
    codes = deferred._Codes(path)
    assert codes.read() == {}
    codes.code(SOURCE)
    assert codes.new == 1


def test_a_cache_that_cannot_be_written_is_left_alone(tmp_path: Path) -> None:
    """Where bytecode cannot be written (here: ``__pycache__`` is a file),
    nothing is raised and nothing is left behind."""
    (tmp_path / "__pycache__").write_text("a file")
    codes = deferred._Codes(tmp_path / "__pycache__" / deferred.CACHE_SUFFIX)
    codes.code(SOURCE)
    codes.save(always=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["__pycache__"]


def test_no_cache_is_written_where_bytecode_may_not_be() -> None:
    """``python -B`` (``sys.dont_write_bytecode``) writes no cache either,
    unless asked to all the same (as ``python -m imip_agent.precompile`` does)."""
    script = (
        "import sys, tempfile, pathlib, imiptools.deferred as d\n"
        "for always in (False, True):\n"
        "    path = pathlib.Path(tempfile.mkdtemp()) / d.CACHE_SUFFIX\n"
        "    codes = d._Codes(path); codes.code(sys.argv[1]); codes.save(always=always)\n"
        "    print(path.exists())\n"
    )
    run = subprocess.run(
        [sys.executable, "-B", "-c", script, SOURCE], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False", "True"]


def test_making_a_class_leaves_dataclasses_as_it_was() -> None:
    """The cached ``exec`` is lent to :mod:`dataclasses` only while a class
    is made."""
    made, _ = _twins(frozen=True)
    made("a")
    assert "exec" not in vars(dataclasses)


def test_precompiling_reaches_every_class() -> None:
    """``python -m imip_agent.precompile`` imports every module declaring a
    class: importing all the others afterwards defers no more classes."""
    script = (
        "import importlib, pkgutil, imiptools, imip_agent, imip_agent.precompile, "
        "imiptools.deferred as d\n"
        "before = d.pending()\n"
        "for package in (imiptools, imip_agent):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "print(before, d.pending())\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = map(int, run.stdout.split())
    assert before == after > 100


# -- simple classes, made without dataclasses' general machinery --------------

TWINS = """
import copy, dataclasses, importlib, inspect, json, pkgutil, sys
import imip_agent, imiptools
from imiptools import deferred

for package in (imiptools, imip_agent):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
pending = dict(deferred._PENDING)
NOT_COPIED = ("__init__", "__dict__", "__weakref__")
MADE = ("__init__", "__setattr__", "__delattr__", "__match_args__", "__dict__", "__weakref__")


def twin(cls, declared):
    namespace = {
        name: copy.copy(value) if isinstance(value, dataclasses.Field) else value
        for name, value in declared.items()
        if name not in NOT_COPIED
    }
    return type(cls.__name__, cls.__bases__, namespace)


def field_facts(made):
    keys = ("name", "type", "init", "repr", "hash", "compare", "metadata", "kw_only", "_field_type")
    return [
        ([getattr(f, k) for k in keys], f.default, f.default_factory)
        for f in made.__dataclass_fields__.values()
    ]


def method_facts(method):
    return (
        method.__name__, method.__qualname__, str(inspect.signature(method)),
        method.__annotations__, method.__defaults__, method.__kwdefaults__,
    )


def differences(ours, theirs):
    found = []
    if set(ours.__dict__) != set(theirs.__dict__):
        found.append(sorted(set(ours.__dict__) ^ set(theirs.__dict__)))
    if repr(ours.__dataclass_params__) != repr(theirs.__dataclass_params__):
        found.append("params")
    a, b = field_facts(ours), field_facts(theirs)
    if [x[0] for x in a] != [x[0] for x in b] or any(
        x[1] is not y[1] or x[2] is not y[2] for x, y in zip(a, b)
    ):
        found.append("fields")
    if ours.__match_args__ != theirs.__match_args__:
        found.append("match_args")
    if method_facts(ours.__init__) != method_facts(theirs.__init__):
        found.append("__init__")
    if ours.__init__.__code__.co_code != theirs.__init__.__code__.co_code:
        found.append("__init__ code")
    for name in ("__setattr__", "__delattr__"):
        if (name in ours.__dict__) != (name in theirs.__dict__):
            found.append(name)
        elif name in ours.__dict__:
            if method_facts(ours.__dict__[name]) != method_facts(theirs.__dict__[name]):
                found.append(name)
    for name, value in ours.__dict__.items():
        if name.startswith("__dataclass") or name in MADE:
            continue
        if value is not theirs.__dict__[name]:
            found.append(name)
    return found


report = {"simple": 0, "general": 0, "different": {}}
for cls, (options, declared) in pending.items():
    for base in cls.__mro__[1:]:
        deferred.settle(base)
    ours = twin(cls, declared)
    fields = deferred._simple_fields(ours, options)
    if fields is None:
        report["general"] += 1
        continue
    report["simple"] += 1
    deferred._make_simple(ours, fields, frozen=options.get("frozen", False))
    theirs = twin(cls, declared)
    dataclasses.dataclass(theirs, **options, eq=False, repr=False)
    found = differences(ours, theirs)
    if found:
        report["different"][cls.__module__ + "." + cls.__qualname__] = repr(found)
print(json.dumps(report))
"""


def test_every_simple_library_class_is_made_as_dataclasses_makes_it() -> None:
    """Each library class the simple path makes, made a second time by
    :func:`dataclasses.dataclass` from the same declaration: the same
    fields, parameters, class attributes and methods (in a child: the
    classes are settled there)."""
    run = subprocess.run([sys.executable, "-c", TWINS], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    assert report["different"] == {}
    assert report["simple"] > 100, report  # the common case takes the simple path


def _simple_twins(frozen: bool) -> tuple[type, type]:
    """A simple class and a subclass, made by the simple path and by dataclasses."""

    def make(simple: bool) -> tuple[type, type]:
        def decorate(cls: type) -> type:
            if not simple:
                return dataclasses.dataclass(frozen=frozen, eq=False, repr=False)(cls)
            fields = deferred._simple_fields(cls, {"frozen": frozen})
            assert fields is not None
            deferred._make_simple(cls, fields, frozen=frozen)
            return cls

        declared = {"__annotations__": {"a": "int", "b": "str"}, "__doc__": "B", "b": "x"}
        base = decorate(type("Base", (), declared))
        namespace = {
            "__annotations__": {"c": "tuple[int, ...]"},
            "__doc__": "D",
            "c": field(default_factory=tuple),
        }
        return base, decorate(type("Derived", (base,), namespace))

    return make(True), make(False)  # type: ignore[return-value]


@pytest.mark.parametrize("frozen", [True, False])
def test_a_simple_class_behaves_as_dataclasses_makes_it(frozen: bool) -> None:
    (base, derived), (_, their_derived) = _simple_twins(frozen)  # type: ignore[misc]
    ours, theirs = derived(1), their_derived(1)
    assert vars(ours) == vars(theirs) == {"a": 1, "b": "x", "c": ()}
    assert derived.__match_args__ == their_derived.__match_args__ == ("a", "b", "c")
    assert "b" in vars(base) and "c" not in vars(derived)  # a factory leaves no class attribute
    for one in (ours, theirs):
        if frozen:
            with pytest.raises(dataclasses.FrozenInstanceError) as assigning:
                one.a = 2
            with pytest.raises(dataclasses.FrozenInstanceError) as deleting:
                del one.c
            assert str(assigning.value) == "cannot assign to field 'a'"
            assert str(deleting.value) == "cannot delete field 'c'"
        else:
            one.a = 2
            assert one.a == 2
    with pytest.raises(TypeError):
        derived()


@pytest.mark.parametrize(
    ("annotations", "namespace", "options"),
    [
        ({"a": "ClassVar[int]"}, {"a": 1}, {}),
        ({"a": "InitVar[int]"}, {}, {}),
        ({"a": "int"}, {"a": field(default=1, kw_only=True)}, {}),
        ({"a": "list[int]"}, {"a": []}, {}),  # a mutable default: dataclasses refuses it
        ({"a": "int", "b": "int"}, {"a": 1}, {}),  # no default after a default
        ({"a": "int"}, {"__post_init__": lambda self: None}, {}),
        ({"a": "int"}, {}, {"frozen": True, "kw_only": True}),
        ({"a": int}, {}, {}),  # not a string: dataclasses reads it
        ({"a": "int"}, {"b": field(default=1)}, {}),  # a field without annotation
    ],
)
def test_anything_else_is_left_to_dataclasses(
    annotations: dict[str, object], namespace: dict[str, object], options: dict[str, object]
) -> None:
    cls = type("Other", (), {"__annotations__": annotations, "__doc__": "O", **namespace})
    assert deferred._simple_fields(cls, options) is None


def test_a_class_without_docstring_or_with_a_general_base_is_left_to_dataclasses() -> None:
    undocumented = type("Undocumented", (), {"__annotations__": {"a": "int"}, "__doc__": None})
    assert deferred._simple_fields(undocumented, {}) is None
    plain_base = type("Child", (ValueError,), {"__annotations__": {"a": "int"}, "__doc__": "C"})
    assert deferred._simple_fields(plain_base, {}) is None
    frozen_base = dataclasses.dataclass(frozen=True)(type("F", (), {"__doc__": "F"}))
    thawed = type("Thawed", (frozen_base,), {"__annotations__": {"a": "int"}, "__doc__": "T"})
    assert deferred._simple_fields(thawed, {}) is None
