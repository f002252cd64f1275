"""TOQ's MySQL is read-only for toqdash: router, connection guard and the database user itself."""

from __future__ import annotations

import MySQLdb
import pytest
from django.db import connections, router

from jobs.models import Job
from jobs.routers import ToqReadOnlyRouter, ToqWriteRefused
from jobs.toq_source import own_toq_connection
from tests.conftest import TOQ_DATABASES

pytestmark = pytest.mark.django_db(databases=TOQ_DATABASES)


def test_router_never_migrates_the_toq_alias():
    assert ToqReadOnlyRouter().allow_migrate("toq", "jobs") is False
    assert router.allow_migrate("toq", "jobs", model_name="job") is False
    assert router.allow_migrate("default", "jobs", model_name="job") is not False


def test_router_refuses_to_write_an_instance_read_from_toq():
    job = Job(toq_id=1, row_hash=0, listing_identity_id=1, status="PENDING", provider="STEP_FUNCTIONS")
    job._state.db = "toq"
    with pytest.raises(ToqWriteRefused):
        router.db_for_write(Job, instance=job)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO media_processing_jobs (listing_identity_id, status, provider) VALUES (1, 'PENDING', 'X')",
        "UPDATE media_processing_jobs SET status = 'FAILED'",
        "DELETE FROM media_processing_jobs",
        "DROP TABLE media_processing_jobs",
        "  create table x (id int)",
    ],
)
def test_the_toq_connection_refuses_non_read_statements(toq_mysql, sql):
    with own_toq_connection() as conn, conn.cursor() as cur, pytest.raises(ToqWriteRefused):
        cur.execute(sql)
    assert toq_mysql.query("SELECT COUNT(*) FROM media_processing_jobs") == [(0,)]


def test_the_shared_alias_is_guarded_too(toq_mysql):
    with connections["toq"].cursor() as cur, pytest.raises(ToqWriteRefused):
        cur.execute("UPDATE media_assets SET status = 'FAILED'")


def test_the_mysql_session_and_user_cannot_write_even_past_the_guard(toq_mysql):
    """Bypass Django entirely: the session is READ ONLY and the user has SELECT only."""
    with own_toq_connection() as conn:
        conn.ensure_connection()
        raw = conn.connection.cursor()
        with pytest.raises(MySQLdb.OperationalError):
            raw.execute("INSERT INTO users (full_name) VALUES ('x')")
    # the user itself, on a plain session
    plain = MySQLdb.connect(host="127.0.0.1", user="toq_reader", passwd="toq_reader_pw", db=toq_mysql.name)
    try:
        with pytest.raises((MySQLdb.OperationalError, MySQLdb.ProgrammingError)) as err:
            plain.cursor().execute("DELETE FROM media_assets")
        assert err.value.args[0] == 1142  # command denied to user
    finally:
        plain.close()
