"""Dataclasses whose methods are made when the class is first used (issue 15).

CPython's :func:`dataclasses.dataclass` makes a class's methods (``__init__``,
``__repr__``, ``__eq__``, ``__hash__`` and, for a frozen class,
``__setattr__`` and ``__delattr__``) by writing their source text and
compiling it, about half a millisecond a class on Python 3.11: some 37 ms of
the 75 classes a resource's delivery imports, twice what the delivery itself
costs, and most of those classes are never instantiated in one run (a
counter-proposal, a quota, an approval are made only when the message needs
one).

:func:`dataclass` here takes the same arguments and makes the same class, but
later: the decorator records the options and puts a stand-in ``__init__`` on
the class; the first instantiation (of the class or of a subclass) hands the
class, its pending bases first, to :func:`dataclasses.dataclass` and goes on
with the real ``__init__``. An instance therefore only ever exists once its
class is complete, so everything that starts from an instance
(``==``, ``hash``, ``repr``, :func:`dataclasses.replace`, :func:`dataclasses.fields`
of an instance, ``match``) sees an ordinary dataclass.

The contract, and its limits:

- Before its first instantiation a class is not yet a dataclass:
  :func:`dataclasses.fields` of the class itself and a class attribute given
  by :func:`dataclasses.field` answer as for a plain class. Call :func:`settle`
  (or :func:`settle_all`) first where that matters.
- A mistake in the options (``order=True`` beside a hand-written ``__lt__``,
  a frozen class on a mutable base) is raised at the first instantiation, not
  at the definition; the test suite settles every class of the library
  (``tests/test_deferred.py``) so that it is still caught there.
- An instance made without ``__init__`` (unpickled, ``object.__new__``)
  in a process that has made none of its class finds it unsettled: nothing
  here pickles the library's classes; :func:`settle_all` first if it must.
- A class defining its own ``__init__`` or asking for ``slots`` is processed
  at once, as by :func:`dataclasses.dataclass`.
- Settling holds a lock, but a thread may briefly see the class between its
  stand-in and its real ``__init__``: a long-running, threaded front end calls
  :func:`settle_all` before it serves, and from then on every class is made
  at its definition, as by :func:`dataclasses.dataclass`, so that a module
  imported later defers nothing (the pipe programs are single-threaded, and
  pay only for the classes their message uses).

Settling also makes ``__eq__``, ``__hash__`` and ``__repr__`` without
compiling source text, where they are the defaults (:func:`_add_value_methods`;
``tests/test_deferred.py`` compares them with those of
:func:`dataclasses.dataclass`): about half of what a frozen class costs.

Most of the library's classes are simple: frozen or not and nothing else,
fields with string annotations and plain defaults, a docstring, bases that
are simple too (:func:`_simple_fields` says which). On the interpreter it
was checked against (:data:`_SIMPLE_VERSIONS`), such a class is made by
:func:`_make_simple`, which does what :func:`dataclasses.dataclass` does for
it and leaves out what it cannot need: reading every annotation for
``ClassVar``, ``InitVar`` and ``KW_ONLY``, the checks for slots, order and
hashing, and compiling a frozen class's ``__setattr__`` and ``__delattr__``
(closures here, as the value methods are). ``__init__`` is still made by
dataclasses' own code. This took the 38 classes a resource's run makes from
31 to 18 million instructions (issue 15); ``tests/test_deferred.py`` makes
every simple library class both ways and compares fields, parameters,
attributes and methods. Every other class goes to dataclasses as before.

The methods :func:`dataclasses.dataclass` still writes as source text
(``__init__`` and a frozen class's ``__setattr__`` and ``__delattr__``) are
compiled once, not by every process: while it makes a class, the ``exec`` it
calls is :func:`_cached_exec`, which runs the code object kept for that very
text, compiling only a text it has not met. The code objects are kept as
CPython keeps a module's bytecode, beside it: in the ``__pycache__`` of the
module declaring the class, one file a module (:func:`cache_path`: its name,
:data:`CACHE_SUFFIX`, the interpreter's ``cache_tag``; its version inside),
read only when one of its classes is made, written at exit when a process
compiled something new, if it can and may (``sys.dont_write_bytecode``),
atomically and without fsync (a lost or torn file is a cache that misses). A
text's SHA-256 is its key, so a class that changed never meets stale code; the
cost it saves was about 14 of the 17 ms a room's delivery spent making its
classes (issue 15). Where the MTA's user cannot write ``__pycache__``,
``python -m imip_agent.precompile`` writes every class's at install time, as
``compileall`` writes bytecode.

For the type checker this *is* :func:`dataclasses.dataclass`, so mypy checks
every class as the dataclass it becomes.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import operator
import os
import reprlib
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from imiptools.digests import sha256_hex

#: dataclasses' marker of "no default" (typed loosely: it is compared with any default).
MISSING: Any = dataclasses.MISSING

#: Classes decorated but not yet processed: their options, and their
#: namespace as declared (with the stand-in ``__init__``).
_PENDING: dict[type, tuple[dict[str, Any], dict[str, Any]]] = {}
_LOCK = threading.RLock()
#: Whether classes are made at their definition (after :func:`settle_all`).
_AT_ONCE = False


def settle(cls: type) -> None:
    """Make ``cls`` (and its pending bases) the dataclass it was declared as;
    nothing for a class already settled or never deferred.

    All or nothing: whatever interrupts the making (a wrong option, or the
    recurrence budget's alarm, an exception raised in this thread at any
    point, :mod:`imiptools.itip.budget`) leaves the class as declared, still
    deferred, and is raised."""
    with _LOCK:
        entry = _PENDING.get(cls)
        if entry is None:
            return
        for base in reversed(cls.__mro__[1:]):
            settle(base)
        options, declared = entry
        try:
            del cls.__init__  # type: ignore[misc]  # the stand-in
            _make(cls, options)
        except BaseException:
            _restore(cls, declared)
            raise
        del _PENDING[cls]


def _make(cls: type, options: dict[str, Any]) -> None:
    """Process ``cls`` as :func:`dataclasses.dataclass` with ``options``
    (its source texts run by :func:`_cached_exec`)."""
    namespace = vars(dataclasses)
    shimmed = "exec" not in namespace  # not already, by a making this one is in
    if shimmed:
        namespace["exec"] = _cached_exec
    try:
        if _plain_values(cls, options):
            frozen = options.get("frozen", False)
            fields = _simple_fields(cls, options)
            if fields is None:
                dataclasses.dataclass(cls, **options, eq=False, repr=False)
            else:
                _make_simple(cls, fields, frozen=frozen)
            _add_value_methods(cls, frozen=frozen)
        else:
            dataclasses.dataclass(cls, **options)
    finally:
        if shimmed:
            namespace.pop("exec", None)


# -- the simple classes, made without dataclasses' general machinery ---------------

#: The interpreters whose :mod:`dataclasses` :func:`_make_simple` follows, and
#: whose private helpers it calls (``_init_fn``, ``_DataclassParams``,
#: ``_FIELD``): ``tests/test_deferred.py`` makes every library class both ways
#: and compares them. Any other interpreter makes every class with
#: :func:`dataclasses.dataclass`.
_SIMPLE_VERSIONS = frozenset({(3, 11)})
#: Words whose presence in an annotation sends a class to dataclasses (which
#: reads them as ``ClassVar``, ``InitVar`` or ``KW_ONLY`` pseudo-fields).
_SPECIAL_TYPES = ("ClassVar", "InitVar", "KW_ONLY")
#: Methods a class may not write itself to be simple (dataclasses would keep
#: them, check them or call them).
_OWN_METHODS = ("__init__", "__setattr__", "__delattr__", "__post_init__", "__match_args__")


def _simple_fields(cls: type, options: dict[str, Any]) -> dict[str, dataclasses.Field[Any]] | None:
    """All of ``cls``'s fields (its bases' first), when it is a simple class:
    only ``frozen`` among the options; a plain ``type``, whose bases are
    ``object`` or simple dataclasses as frozen as it; every annotation a
    string naming no pseudo-field; no field ``kw_only``, no mutable default,
    no field without a default after one with; a docstring; none of
    :data:`_OWN_METHODS`, and no ``__post_init__`` inherited. None for any
    other class, which :func:`dataclasses.dataclass` then makes (and, where
    the class is wrong, refuses). Changes nothing but the declared
    :class:`dataclasses.Field` objects' ``name``, ``type`` and kind, which
    dataclasses sets the same way."""
    if not _simple_class(cls, options):
        return None
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:-1]):
        fields.update(base.__dict__["__dataclass_fields__"])
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 as dataclasses reads them
    for name, annotation in annotations.items():
        made = _simple_field(cls, name, annotation)
        if made is None:
            return None
        fields[name] = made
    strays = (n for n, v in cls.__dict__.items() if isinstance(v, dataclasses.Field))
    if any(name not in annotations for name in strays) or not _defaults_last(fields):
        return None
    return fields


def _simple_class(cls: type, options: dict[str, Any]) -> bool:
    """The checks of :func:`_simple_fields` on the class as a whole."""
    if sys.version_info[:2] not in _SIMPLE_VERSIONS or not set(options) <= {"frozen"}:
        return False
    if type(cls) is not type or not cls.__doc__ or hasattr(cls, "__post_init__"):
        return False
    if any(name in cls.__dict__ for name in _OWN_METHODS) or cls.__mro__[-1] is not object:
        return False
    frozen = options.get("frozen", False)
    return all(_simple_base(base, frozen) for base in cls.__mro__[1:-1])


def _simple_base(base: type, frozen: bool) -> bool:
    """Whether ``base`` is a dataclass of plain, positional fields, frozen as ``frozen``."""
    fields = base.__dict__.get("__dataclass_fields__")
    params = base.__dict__.get("__dataclass_params__")
    if fields is None or params is None or params.frozen != frozen:
        return False
    return all(f._field_type is dataclasses._FIELD and f.kw_only is False for f in fields.values())  # type: ignore[attr-defined]


def _simple_field(cls: type, name: str, annotation: object) -> dataclasses.Field[Any] | None:
    """The field ``name`` as dataclasses' ``_get_field`` makes a plain one; None
    when it may not be plain (dataclasses decides)."""
    if not isinstance(annotation, str) or any(word in annotation for word in _SPECIAL_TYPES):
        return None
    default: Any = getattr(cls, name, MISSING)
    if isinstance(default, dataclasses.Field):
        made = default
    elif isinstance(default, types.MemberDescriptorType):
        return None
    else:
        made = dataclasses.field(default=default)
    if made.kw_only is True or made.default.__class__.__hash__ is None:
        return None
    made.name, made.type = name, annotation
    made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
    made.kw_only = False
    return made


def _defaults_last(fields: dict[str, dataclasses.Field[Any]]) -> bool:
    """Whether no argument of ``__init__`` without a default follows one with."""
    seen = False
    for f in fields.values():
        if not f.init:
            continue
        has_default = not (f.default is MISSING and f.default_factory is MISSING)
        if seen and not has_default:
            return False
        seen = seen or has_default
    return True


def _make_simple(cls: Any, fields: dict[str, dataclasses.Field[Any]], *, frozen: bool) -> None:
    """Make ``cls`` as ``dataclasses.dataclass(cls, frozen=frozen, eq=False,
    repr=False)`` makes a simple class (:func:`_simple_fields`), without what
    that class does not need: the checks for pseudo-fields, slots, order and
    hashing; a frozen class's ``__setattr__`` and ``__delattr__`` are
    closures rather than source text compiled per class. ``__init__`` is
    made by dataclasses' own ``_init_fn`` (its text compiled once,
    :func:`_cached_exec`)."""
    cls.__dataclass_params__ = dataclasses._DataclassParams(  # type: ignore[attr-defined]
        True, False, False, False, False, frozen
    )
    for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063 as dataclasses
        if isinstance(cls.__dict__.get(name), dataclasses.Field):
            default = fields[name].default
            if default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
    cls.__dataclass_fields__ = fields
    module = sys.modules.get(cls.__module__)
    arguments = tuple(f for f in fields.values() if f.init)
    init = dataclasses._init_fn(  # type: ignore[attr-defined]
        list(fields.values()),
        arguments,
        (),
        frozen,
        False,
        "__dataclass_self__" if "self" in fields else "self",
        module.__dict__ if module is not None else {},
        False,
    )
    _set_method(cls, init)
    if frozen:
        for method in _frozen_methods(cls, frozenset(fields)):
            _set_method(cls, method)
    cls.__match_args__ = tuple(f.name for f in arguments)  # type: ignore[misc]


def _set_method(cls: type, method: Callable[..., Any]) -> None:
    """``method`` as ``cls``'s, named as a method of it."""
    method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
    setattr(cls, method.__name__, method)


def _frozen_methods(cls: Any, names: frozenset[str]) -> tuple[Callable[..., None], ...]:
    """A frozen dataclass's ``__setattr__`` and ``__delattr__`` as
    dataclasses makes them (Python 3.11): refused on an instance of ``cls``
    itself or for a field's name, with the same message; otherwise left to
    the next class in the MRO."""

    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    for method in (__setattr__, __delattr__):
        method.__annotations__ = {}  # as dataclasses' own, which have none
    return __setattr__, __delattr__


#: How a module's cache of compiled methods is named after the module.
CACHE_SUFFIX = f"dataclass-methods.{sys.implementation.cache_tag}.marshal"
#: The first item of the cached tuple: what wrote it.
_CACHE_HEADER = ("imiptools.deferred", 2, sys.hexversion)


class _Codes:
    """The marshalled code objects of the source texts met so far, by the
    SHA-256 of the text (the texts themselves would take about three times
    the memory): read from :attr:`path` when first needed, written back when
    new ones were compiled. A code object is unmarshalled when its text is
    met and not kept (its function keeps what it needs of it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, bytes] | None = None
        self.new = 0

    def code(self, text: str) -> CodeType:
        """The code object of ``text`` (compiled as ``exec(text)`` would)."""
        if self.known is None:
            self.known = self.read()
        key = sha256_hex(text.encode("utf-8", "surrogatepass"))
        data = self.known.get(key)
        found = None if data is None else _loaded(data)
        if found is None:
            found = compile(text, "<string>", "exec")
            self.known[key] = marshal.dumps(found)
            self.new += 1
        return found

    def read(self) -> dict[str, bytes]:
        """What :attr:`path` holds (marshalled code objects by their text's digest);
        nothing when it is missing, unreadable or written by another
        interpreter."""
        try:
            header, codes = marshal.loads(self.path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return {}
        if header != _CACHE_HEADER or not isinstance(codes, dict):
            return {}
        return {k: v for k, v in codes.items() if isinstance(k, str) and isinstance(v, bytes)}

    def save(self, *, always: bool = False) -> None:
        """Write what is known (merged with what another process wrote
        meanwhile) back to :attr:`path`, if bytecode may be written there
        (``sys.dont_write_bytecode`` is false) or ``always`` (an explicit
        request, as ``compileall`` writes under ``python -B``); any failure
        leaves the cache as it was."""
        if not self.new or self.known is None or (sys.dont_write_bytecode and not always):
            return
        merged = {**self.read(), **self.known}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            temporary.write_bytes(marshal.dumps((_CACHE_HEADER, merged)))
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            return
        self.new = 0


def _loaded(data: bytes) -> CodeType | None:
    """The code object marshalled as ``data``; None if it is not one."""
    try:
        code = marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


#: The caches by module name (None: the module has no file to keep one by).
_CACHES: dict[str, _Codes | None] = {}


def cache_path(module: str) -> Path | None:
    """Where the compiled methods of ``module``'s classes are kept: its
    ``__pycache__``, as its bytecode (None for a module without a file)."""
    found = sys.modules.get(module)
    origin = getattr(found, "__file__", None)
    if not isinstance(origin, str):
        return None
    path = Path(origin)
    return path.with_name("__pycache__") / f"{path.stem}.{CACHE_SUFFIX}"


def _codes(module: str) -> _Codes | None:
    """The cache of ``module`` (made at first use)."""
    if module not in _CACHES:
        path = cache_path(module)
        _CACHES[module] = None if path is None else _Codes(path)
        if len(_CACHES) == 1:
            atexit.register(save_caches)
    return _CACHES[module]


def save_caches(*, always: bool = False) -> None:
    """Write back every cache that met a text it did not hold (``always``:
    as :meth:`_Codes.save`)."""
    for codes in _CACHES.values():
        if codes is not None:
            codes.save(always=always)


def _cached_exec(
    source: str | CodeType,
    globals: dict[str, Any] | None = None,
    locals: dict[str, Any] | None = None,
) -> None:
    """:func:`exec` for :mod:`dataclasses`, a text's code object compiled once
    (kept in the cache of the module whose namespace ``globals`` is)."""
    if isinstance(source, str):
        codes = _codes(str((globals or {}).get("__name__", "")))
        source = codes.code(source) if codes else compile(source, "<string>", "exec")
    builtins.exec(source, globals, locals)


def _restore(cls: type, declared: dict[str, Any]) -> None:
    """Put ``cls``'s namespace back as ``declared`` (undo a making cut short)."""
    for name in [name for name in cls.__dict__ if name not in declared]:
        delattr(cls, name)
    for name, value in declared.items():
        if cls.__dict__.get(name) is not value:
            setattr(cls, name, value)


#: The options :func:`_add_value_methods` stands in for the generated
#: methods under (and ``init``, ``frozen``, ``match_args``, ``kw_only``,
#: which it leaves to :func:`dataclasses.dataclass`).
_PLAIN_OPTIONS = frozenset({"init", "frozen", "match_args", "kw_only"})
_VALUE_METHODS = ("__eq__", "__hash__", "__repr__")


def _plain_values(cls: type, options: dict[str, Any]) -> bool:
    """Whether ``cls``'s ``__eq__``, ``__hash__`` and ``__repr__`` are the
    defaults :func:`dataclasses.dataclass` would make: none hand-written,
    no option or field asks for another (``order``, ``unsafe_hash``,
    ``eq=False``, a field's own ``hash``)."""
    if not set(options) <= _PLAIN_OPTIONS or any(m in cls.__dict__ for m in _VALUE_METHODS):
        return False
    inherited = (getattr(base, "__dataclass_fields__", {}) for base in cls.__mro__[1:])
    declared = [*(f for table in inherited for f in table.values()), *cls.__dict__.values()]
    return all(f.hash is None for f in declared if isinstance(f, dataclasses.Field))


def _add_value_methods(cls: Any, frozen: bool) -> None:
    """``__eq__``, ``__hash__`` and ``__repr__`` as :func:`dataclasses.dataclass`
    makes them (Python 3.11: equal when of the same class with equal compared
    fields; hashed over those fields when frozen, unhashable when not; shown
    as ``Name(field=value, ...)`` over the shown fields, recursion guarded),
    but closures over the field names rather than source text compiled per
    class: the three cost about half of a frozen class's making."""
    fields = dataclasses.fields(cls)
    compared = _getter(tuple(f.name for f in fields if f.compare))
    shown = tuple(f.name for f in fields if f.repr)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(compared(self) == compared(other))
        return NotImplemented

    def __hash__(self: object) -> int:
        return hash(compared(self))

    @reprlib.recursive_repr()
    def __repr__(self: object) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({values})"

    for method in (__eq__, __hash__, __repr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
    cls.__eq__, cls.__repr__ = __eq__, __repr__
    cls.__hash__ = __hash__ if frozen else None


def _getter(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    """The tuple of ``names``' values of an object."""
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda value: (one(value),)
    if not names:
        return lambda value: ()
    return operator.attrgetter(*names)


def settle_all() -> None:
    """Settle every class deferred so far, and make every class defined from
    now on at its definition (a long-running service, before it serves or
    forks: no thread of it ever meets a class being made)."""
    global _AT_ONCE
    with _LOCK:
        _AT_ONCE = True
        for cls in list(_PENDING):
            settle(cls)
        save_caches()


def pending() -> int:
    """How many classes are still deferred (for tests and benchmarks)."""
    return len(_PENDING)


def _stand_in(cls: type) -> Callable[..., None]:
    """The ``__init__`` of a deferred ``cls``: settle it, then initialise."""

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        settle(cls)
        cls.__init__(self, *args, **kwargs)  # type: ignore[misc]

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _deferred(cls: type, options: dict[str, Any]) -> type:
    """``cls`` with its processing deferred, where that is safe."""
    if "__init__" in cls.__dict__ or options.get("slots") or not options.get("init", True):
        return dataclasses.dataclass(cls, **options)
    with _LOCK:
        if _AT_ONCE:
            _make(cls, options)
            return cls
        cls.__init__ = _stand_in(cls)  # type: ignore[misc]
        _PENDING[cls] = (options, dict(cls.__dict__))
    return cls


def _dataclass(cls: type | None = None, /, **options: Any) -> Any:
    """:func:`dataclasses.dataclass`, its methods made on first instantiation."""
    if cls is None:
        return lambda later: _deferred(later, options)
    return _deferred(cls, options)


if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:
    dataclass = _dataclass
