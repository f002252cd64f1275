"""The three roles of toqdash as Django groups (Support, Engineer, Admin).

Views check these through `user_has_role` (not only templates). Admin = the Admin group or a
superuser; each role includes the ones below it.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group

SUPPORT = "Support"
ENGINEER = "Engineer"
ADMIN = "Admin"
ROLE_ORDER = (SUPPORT, ENGINEER, ADMIN)


def ensure_roles() -> None:
    for name in ROLE_ORDER:
        Group.objects.get_or_create(name=name)


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    wanted = ROLE_ORDER.index(role)
    # Read once per user object (one request): views and the links they offer ask several times.
    names: set[str] | None = getattr(user, "_toqdash_role_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[union-attr,attr-defined]
        user._toqdash_role_names = names  # type: ignore[union-attr,attr-defined]
    return any(ROLE_ORDER.index(n) >= wanted for n in names if n in ROLE_ORDER)
