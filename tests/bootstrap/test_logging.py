"""rhip.bootstrap.logging: JSON and text lines, with no exception message and no SQL parameter in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import IntegrityError

from rhip.bootstrap.container import database
from rhip.bootstrap.logging import JsonFormatter, TextFormatter, configure_logging, redacted_traceback
from rhip.bootstrap.settings import Settings

ID_NUMBER = "110101199003077777"
NAME = "司徒翠花"
PHONE = "13912345678"


def _record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("rhip.test", logging.ERROR, __file__, 1, msg, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    return record


def _raised() -> BaseException:
    try:
        try:
            raise KeyError(NAME)
        except KeyError as inner:
            raise ValueError(f"no patient {ID_NUMBER}") from inner
    except ValueError as exc:
        return exc


def test_json_lines_keep_fields_and_drop_exception_messages() -> None:
    exc = _raised()
    line = JsonFormatter().format(
        _record("write refused: %s", exc, exc=exc, route="fhir:Patient:type", status=500)
    )
    out = json.loads(line)
    assert out["msg"] == "write refused: ValueError"
    assert out["route"] == "fhir:Patient:type" and out["status"] == 500
    assert "KeyError" in out["exc"] and "ValueError" in out["exc"] and "test_logging.py" in out["exc"]
    assert "direct cause" in out["exc"]
    for secret in (ID_NUMBER, NAME, PHONE):
        assert secret not in line


def test_text_lines_keep_fields_and_drop_exception_messages() -> None:
    exc = _raised()
    text = TextFormatter().format(_record("failed %(error)s", {"error": exc}, exc=exc, route="fhir:base"))
    first = text.splitlines()[0]
    assert first.endswith("ERROR rhip.test failed ValueError route=fhir:base"), first
    assert "Traceback (most recent call last):" in text
    assert ID_NUMBER not in text and NAME not in text


def test_messages_without_exceptions_are_left_as_they_are() -> None:
    assert json.loads(JsonFormatter().format(_record("%d rows", 3)))["msg"] == "3 rows"


def test_exception_groups_list_their_members_without_messages() -> None:
    try:
        raise ExceptionGroup(PHONE, [ValueError(ID_NUMBER), TypeError(NAME)])
    except ExceptionGroup as group:
        text = redacted_traceback(group)
    assert "ValueError" in text and "TypeError" in text and "ExceptionGroup" in text
    assert ID_NUMBER not in text and NAME not in text and PHONE not in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_quiets_loggers_that_print_urls() -> None:
    configure_logging("INFO", "text")
    assert isinstance(logging.getLogger().handlers[0].formatter, TextFormatter)
    assert logging.getLogger("uvicorn.access").disabled
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("rhip.access").isEnabledFor(logging.INFO)


def test_database_errors_carry_no_sql_parameters(tmp_path: Path) -> None:
    db = database(Settings(database_url=f"sqlite:///{tmp_path}/rhip.db"))
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE person (id_number TEXT UNIQUE, name TEXT)")
        insert = sqlalchemy.text("INSERT INTO person VALUES (:id_number, :name)")
        with pytest.raises(IntegrityError) as caught, db.write() as conn:
            conn.execute(insert, {"id_number": ID_NUMBER, "name": NAME})
            conn.execute(insert, {"id_number": ID_NUMBER, "name": NAME})
    finally:
        db.dispose()
    for text in (
        str(caught.value),
        repr(caught.value),
        JsonFormatter().format(_record("x", exc=caught.value)),
    ):
        assert ID_NUMBER not in text and NAME not in text
    assert "hidden" in str(caught.value)


def test_a_logged_database_error_is_one_json_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("rhip.test.db")
    logger.addHandler(handler)
    try:
        try:
            raise IntegrityError(
                "INSERT INTO person VALUES (?)", (ID_NUMBER,), Exception(NAME), hide_parameters=True
            )
        except IntegrityError:
            logger.exception("write failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["exc"].endswith(
        "sqlalchemy.exc.IntegrityError: (message withheld: it may hold personal data)"
    )
    assert ID_NUMBER not in lines[0] and NAME not in lines[0]
