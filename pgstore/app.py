"""Loading an application's Domain from `module` or `module:attribute`."""

from __future__ import annotations

import importlib
import os
import sys

from pgstore.domain import Domain
from pgstore.errors import ConfigurationError


def load_domain(app: str) -> Domain:
    """Import APP (``package.module`` holding one Domain, or ``package.module:name``)."""
    module_name, _, attribute = app.partition(":")
    # Like other app runners: modules in the current directory are importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ConfigurationError(
            f"Could not import {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Domain):
            raise ConfigurationError(f"{module_name}:{attribute} is not a pgstore Domain")
        return found
    domains = [value for value in vars(module).values() if isinstance(value, Domain)]
    if len(domains) != 1:
        names = ", ".join(
            f"{module_name}:{name}"
            for name, value in vars(module).items()
            if isinstance(value, Domain)
        )
        raise ConfigurationError(
            f"{module_name} holds {len(domains)} Domains; name one as module:attribute"
            + (f" ({names})" if names else "")
        )
    return domains[0]
