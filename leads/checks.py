"""System checks of the leads settings (``manage.py check``; ``runserver`` and ``migrate`` run them too)."""

from __future__ import annotations

from django.core.checks import Error, register
from django.utils.module_loading import import_string

from leads import conf


@register()
def owner_backend_imports(app_configs=None, **kwargs) -> list[Error]:
    """``BATON_OWNER_BACKEND`` names a class with ``owner_for``. The settings check only its shape (a dotted
    path: importing a CRM backend there would import models before the apps are ready); misspelt, it was
    found at the first lead routed by an account-owner rule, as a 500 for every prospect of that meeting
    type. The class is imported, not made: a CRM backend may connect when it is."""
    path = conf.owner_backend_path()
    try:
        backend = import_string(path)
    except Exception as exc:  # ImportError for a wrong name; anything the module raises on import
        problem = f"cannot be imported ({type(exc).__name__}: {exc})"
    else:
        if callable(getattr(backend, "owner_for", None)):
            return []
        problem = "has no owner_for(*, email, domain) method"
    return [
        Error(
            f"BATON_OWNER_BACKEND {path!r} {problem}: every lead of an account-owner rule would fail.",
            hint="Set BATON_OWNER_BACKEND to a dotted path such as leads.owners.AccountOwnerBackend "
            "(docs/routing-rules.md).",
            id="baton.E001",
        )
    ]
