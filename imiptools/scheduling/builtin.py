"""The built-in scheduling functions: importing this module registers them.

Each module below registers its functions (and steps) with
:mod:`imiptools.scheduling.registry` when it is imported; none of them
imports the package face, so the face can import this module without a
cycle. :mod:`.alternatives`, :mod:`.availability` and :mod:`.opening` are
helpers the functions use and register nothing.
"""

from __future__ import annotations

from types import ModuleType

from imiptools.scheduling import access, counter, freebusy, hours, limits, quota

__all__ = ["MODULES"]

#: The modules of the built-in functions, in the order of the reference.
MODULES: tuple[ModuleType, ...] = (freebusy, counter, access, limits, hours, quota)
