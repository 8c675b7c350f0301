"""The read-only role ``enms_analyst`` that BI tools log in as: its password, what its sessions
may cost, and what it can still reach that an administrator should close
(``enms db analyst-password``)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from enms_dagster.settings import AnalystLimits

ANALYST_ROLE = "enms_analyst"


def set_analyst_password(conn: psycopg.Connection, password: str | None) -> None:
    """Let ``enms_analyst`` log in with ``password`` (hashed on this side with the server's
    ``password_encryption``, so the clear text never reaches the server or its logs), or, with
    ``None``, take its login away again."""
    role = sql.Identifier(ANALYST_ROLE)
    if password is None:
        conn.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN PASSWORD NULL").format(role))
        return
    if not password:
        raise ValueError("the analyst password is empty")
    hashed = conn.pgconn.encrypt_password(password.encode(), ANALYST_ROLE.encode())
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(hashed.decode()))
    )


def set_analyst_limits(conn: psycopg.Connection, limits: AnalystLimits) -> None:
    """Set what every ``enms_analyst`` session may cost (role-wide, so on every database of the
    cluster). The server checks each value; ``temp_file_limit`` needs a superuser to set."""
    role = sql.Identifier(ANALYST_ROLE)
    for name in ("statement_timeout", "idle_in_transaction_session_timeout", "temp_file_limit"):
        conn.execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(
                role, sql.Identifier(name), sql.Literal(getattr(limits, name))
            )
        )
    conn.execute(
        sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
            role, sql.Literal(limits.connection_limit)
        )
    )


def analyst_access_gaps(conn: psycopg.Connection) -> list[str]:
    """What ``enms_analyst`` can still reach beyond this database's marts, one sentence each with
    the fix: other databases of the cluster it may connect to (PUBLIC has CONNECT on a new
    database), and the catalog functions migration 0017 could not take away (not a superuser)."""
    gaps = [
        f"it may connect to database {name!r} (CONNECT for PUBLIC there): allow it only this "
        f"database in pg_hba.conf (deploy/postgres/pg_hba.conf), or run "
        f"REVOKE CONNECT ON DATABASE {sql.Identifier(name).as_string(conn)} FROM PUBLIC there "
        "and GRANT CONNECT to the roles that use it"
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname <> current_database() "
            "AND has_database_privilege(%s, datname, 'CONNECT') ORDER BY datname",
            (ANALYST_ROLE,),
        )
    ]
    gaps += [
        f"it may call {function} (a superuser must run "
        f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC in this database)"
        for (function,) in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'pg_catalog'::regnamespace "
            "AND (p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$' "
            "OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea')) "
            "AND has_function_privilege(%s, p.oid, 'EXECUTE') ORDER BY 1",
            (ANALYST_ROLE,),
        )
    ]
    for privilege in ("CREATE", "TEMPORARY"):
        if conn.execute(
            "SELECT has_database_privilege(%s, current_database(), %s)", (ANALYST_ROLE, privilege)
        ).fetchone()[0]:
            gaps.append(f"it has {privilege} on this database (run `enms db migrate`)")
    return gaps
