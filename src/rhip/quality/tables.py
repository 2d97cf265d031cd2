"""The data-quality tables (migration 0007): counts per day, institution and rule; never resource content.

- ``quality_scored``: each resource version scored once (its key), so that an event seen twice, or a
  catch-up after a crash, never counts a version twice.
- ``quality_daily``: per arrival day, institution and rule, how many resources the rule applied to and how
  many passed (the family, type and field are copied from the rule, so figures survive a rule's removal).
- ``quality_arrivals``: per day, institution and resource type, resources scored by delay bucket.
- ``quality_example``: a few failing resource versions per day, institution and rule: type, id, version and
  the field, for an operator to look the record up through the secured API; no value of the resource.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table

from rhip.db.metadata import metadata

quality_scored = Table(
    "quality_scored",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("day", String(10), nullable=False),
    Column("institution", String(128), nullable=False),
    Column("scored_us", BigInteger, nullable=False),
)

quality_daily = Table(
    "quality_daily",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("institution", String(128), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("family", String(16), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("element", String(255), nullable=False),
    Column("checked", BigInteger, nullable=False),
    Column("passed", BigInteger, nullable=False),
)

quality_arrivals = Table(
    "quality_arrivals",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("institution", String(128), primary_key=True),
    Column("res_type", String(64), primary_key=True),
    Column("bucket", String(16), primary_key=True),
    Column("resources", BigInteger, nullable=False),
)

quality_example = Table(
    "quality_example",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("institution", String(128), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("element", String(255), nullable=False),
)
