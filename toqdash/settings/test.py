"""Test settings: base settings made faster. Services are real (PostgreSQL, MariaDB, Redis)."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/toqdash")
os.environ.setdefault("TOQ_DATABASE_URL", "mysql://toq_reader:toq_reader_pw@127.0.0.1:3306/toq_test")

from .base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if "toq" in DATABASES:  # noqa: F405
    # TOQ's database is never written by toqdash: no test database is created for it (a mirror of
    # itself); tests reset TOQ's tables through a root connection (tests/conftest.py).
    DATABASES["toq"]["TEST"] = {"MIRROR": "toq"}  # noqa: F405

# whitenoise expects STATIC_ROOT to exist (collectstatic is not run for tests).
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405
