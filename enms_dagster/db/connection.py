"""Connections to the warehouse from the URLs the configuration holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) where psycopg wants libpq ones."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


@contextmanager
def connect(database_url: str, **kwargs) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(database_url), **kwargs) as conn:
        yield conn
