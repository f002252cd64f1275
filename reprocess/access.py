"""Whether a page shows links to the reprocess pages. The reprocess views check the Admin role
themselves (403); this only decides what a page offers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from jobs.roles import ADMIN, user_has_role


def reprocess_links_visible(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admins see the links. The user's roles are read once per request (`user_has_role` keeps
    them on the user object), so asking here costs no query after the view's own role check."""
    return user_has_role(user, ADMIN)
