"""The audit log: an append-only, hash-chained table of AuditEvents, written in the writing transaction.

Each entry holds the BALP AuditEvent (JSON bytes) and the columns queries filter on. Entries form a chain:
``hash = H(prev_hash || canonical bytes of the entry's content)``, where ``prev_hash`` is the hash of the
entry before it (``seq - 1``) and H is SM3 (GM/T 0004) or SHA-256, recorded per entry so the algorithm can
change without breaking the chain. ``audit_head`` holds the newest ``(seq, hash)``: appenders read it
under a lock that serialises them (SQLite's write lock; ``pg_advisory_xact_lock`` on PostgreSQL), so
positions are assigned in commit order, and it lets :func:`verify` notice entries cut off the end.

``seq`` is not part of the hashed content: the chain itself fixes each entry's place, so an entry moved
to another position keeps a valid hash but breaks the links around it, and :func:`verify` can tell a
reordering from an alteration. ``audit_patient`` indexes entries by Patient id (``patients`` is a
space-separated list) for "who viewed my record"; :func:`verify` checks it against the entries too.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Column, Connection, Index, Integer, LargeBinary, String, Table, Text, text

from rhip.db.dialect import insert_rows
from rhip.db.metadata import BigKey, metadata

ALGORITHMS = ("sm3", "sha256")
DEFAULT_ALGORITHM = "sm3"
GENESIS = "0" * 64  # prev_hash of the first entry
ACTIONS = frozenset("CRUDE")
OUTCOMES = frozenset({"0", "4", "8", "12"})
# pg_advisory_xact_lock key of the appenders (a fixed 64-bit number derived from the table's name).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"rhip.audit_log").digest()[:8], "big", signed=True)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigKey, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("recorded_us", BigInteger, nullable=False),
    Column("action", String(1), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("subtype", String(128), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("role", String(32), nullable=True),
    Column("institution", String(64), nullable=True),
    Column("client", String(128), nullable=True),
    Column("purpose", String(32), nullable=True),
    Column("patients", Text, nullable=False),
    Column("entities", Text, nullable=False),
    Column("event", LargeBinary, nullable=False),
    Column("algorithm", String(8), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "subject", "seq"),
    Index(None, "institution", "seq"),
    Index(None, "recorded_us"),
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("patient", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Index(None, "seq"),
    sqlite_with_rowid=False,  # found by (patient, seq): clustered by it
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


class AuditRow(NamedTuple):
    """The content of one entry, in column order (plain data: it travels to the writer process)."""

    id: str
    recorded_us: int
    action: str
    outcome: str
    event_type: str
    subtype: str
    subject: str
    role: str | None
    institution: str | None
    client: str | None
    purpose: str | None
    patients: str
    entities: str
    event: bytes
    algorithm: str


CONTENT_COLUMNS = AuditRow._fields
LOG_COLUMNS = ("seq", *CONTENT_COLUMNS, "prev_hash", "hash")


def _joined(value: Any, name: str) -> str:
    items = value.split() if isinstance(value, str) else [str(v) for v in value or ()]
    if any(not item or any(c.isspace() for c in item) for item in items):
        raise ValueError(f"audit entry: {name} must be ids without spaces")
    return " ".join(dict.fromkeys(items))


def _optional(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return None if value is None or value == "" else str(value)


def audit_row(entry: Mapping[str, Any], algorithm: str | None = None) -> AuditRow:
    """Check and normalise an entry (a mapping of the content columns); ``ValueError`` when malformed.

    ``patients`` and ``entities`` may be space-separated strings or lists; ``event`` bytes or a string.
    The algorithm is the entry's own ``algorithm``, else ``algorithm``, else SM3.
    """
    alg = str(entry.get("algorithm") or algorithm or DEFAULT_ALGORITHM)
    if alg not in ALGORITHMS:
        raise ValueError(f"audit entry: unknown hash algorithm {alg!r}")
    action, outcome = str(entry.get("action", "")), str(entry.get("outcome", "0"))
    if action not in ACTIONS or len(action) != 1:
        raise ValueError(f"audit entry: action must be one of C R U D E, not {action!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"audit entry: outcome must be 0, 4, 8 or 12, not {outcome!r}")
    event = entry.get("event")
    if isinstance(event, str):
        event = event.encode()
    if not isinstance(event, bytes | bytearray | memoryview) or not event:
        raise ValueError("audit entry: event must be the AuditEvent's JSON bytes")
    ident, subject = str(entry.get("id") or ""), str(entry.get("subject") or "")
    if not ident or not subject:
        raise ValueError("audit entry: id and subject are required")
    recorded = entry.get("recorded_us")
    if not isinstance(recorded, int) or isinstance(recorded, bool):
        raise ValueError("audit entry: recorded_us must be an integer (epoch microseconds)")
    return AuditRow(
        ident,
        recorded,
        action,
        outcome,
        str(entry.get("event_type") or "rest"),
        str(entry.get("subtype") or ""),
        subject,
        _optional(entry, "role"),
        _optional(entry, "institution"),
        _optional(entry, "client"),
        _optional(entry, "purpose"),
        _joined(entry.get("patients"), "patients"),
        _joined(entry.get("entities"), "entities"),
        bytes(event),
        alg,
    )


_LENGTH = struct.Struct(">I").pack
_NONE = b"\xff\xff\xff\xff"  # a length no field has: None differs from ""


def canonical(row: AuditRow) -> bytes:
    """The bytes of an entry's content that its hash covers: each column length-prefixed, in order."""
    parts: list[bytes] = []
    for value in row:
        if value is None:
            parts.append(_NONE)
            continue
        data = value if type(value) is bytes else str(value).encode()
        parts += (_LENGTH(len(data)), data)
    return b"".join(parts)


def chain_hash(algorithm: str, prev_hash: str, row: AuditRow) -> str:
    """``H(prev_hash || canonical(row))`` as hex; ``ValueError`` for an unknown algorithm."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown hash algorithm {algorithm!r}")
    return hashlib.new(algorithm, bytes.fromhex(prev_hash) + canonical(row)).hexdigest()


def _lock(conn: Connection) -> None:
    # SQLite: the write transaction holds the database's single write lock already.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def head(conn: Connection) -> tuple[int, str] | None:
    """The newest entry's ``(seq, hash)`` as recorded by the appenders (None for an empty log)."""
    found = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    return (int(found[0]), str(found[1])) if found is not None else None


def append(
    conn: Connection, rows: Sequence[AuditRow | Mapping[str, Any]], algorithm: str | None = None
) -> list[int]:
    """Chain ``rows`` onto the log inside the current transaction; returns their positions (seq).

    Takes the appenders' lock until the transaction ends: keep it near the end of the transaction.
    Mappings are checked with :func:`audit_row` (``algorithm`` for those naming none).
    """
    if not rows:
        return []
    entries = [r if isinstance(r, AuditRow) else audit_row(r, algorithm) for r in rows]
    _lock(conn)
    last = head(conn)
    seq, prev = last if last is not None else (0, GENESIS)
    log_rows: list[tuple[Any, ...]] = []
    patient_rows: list[tuple[str, int]] = []
    seqs: list[int] = []
    for entry in entries:
        seq += 1
        digest = chain_hash(entry.algorithm, prev, entry)
        log_rows.append((seq, *entry, prev, digest))
        patient_rows.extend((p, seq) for p in entry.patients.split())
        seqs.append(seq)
        prev = digest
    insert_rows(conn, audit_log, LOG_COLUMNS, log_rows)
    insert_rows(conn, audit_patient, ("patient", "seq"), patient_rows)
    values = {"seq": seq, "hash": prev}
    if last is None:
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"), values)
    else:
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"), values)
    return seqs


@dataclass(frozen=True)
class Problem:
    """One thing :func:`verify` found wrong with the log (``rhip.security.audit.verify`` words it).

    ``kind``: ``altered`` (the entry's content no longer matches its hash), ``deleted`` (entries ``seq`` to
    ``last`` are missing), ``reordered`` (entry ``seq`` belongs after entry ``other``), ``broken`` (entry
    ``seq`` follows an entry that is not there: one was replaced, or deleted and the rest renumbered),
    ``inserted`` (entries ``other`` and ``seq`` follow the same entry), ``added`` (entries past the recorded
    head), ``index`` (the patient index disagrees with the entry) or ``algorithm`` (hashed with another
    algorithm than the one required) or ``head`` (the head's record is missing).
    """

    kind: str
    seq: int
    id: str | None = None
    other: int | None = None
    last: int | None = None
    detail: str = ""


_SELECT = f"SELECT {', '.join(LOG_COLUMNS)} FROM audit_log WHERE seq > :after AND seq <= :upto ORDER BY seq LIMIT :n"
_BEYOND = "SELECT (SELECT max(seq) FROM audit_log), (SELECT seq FROM audit_head WHERE id = 1)"


def _chunks(conn: Connection, upto: int, size: int) -> Iterator[list[Any]]:
    # Keyset pages, each its own short statement: no server-side cursor, and on PostgreSQL no snapshot
    # held for the whole run (a long one would hold back the outbox's readers, who wait for its xmin).
    after = 0
    while True:
        rows = list(conn.execute(text(_SELECT), {"after": after, "upto": upto, "n": size}))
        if not rows:
            return
        yield rows
        after = int(rows[-1][0])


def _index_problems(conn: Connection, rows: Sequence[Any]) -> Iterable[Problem]:
    indexed: dict[int, set[str]] = {}
    found = conn.execute(
        text("SELECT seq, patient FROM audit_patient WHERE seq BETWEEN :lo AND :hi"),
        {"lo": int(rows[0].seq), "hi": int(rows[-1].seq)},
    )
    for seq, patient in found:
        indexed.setdefault(int(seq), set()).add(str(patient))
    for row in rows:
        if set(str(row.patients).split()) != indexed.get(int(row.seq), set()):
            detail = "its patient index rows differ from the entry"
            yield Problem("index", int(row.seq), str(row.id), detail=detail)


class _Chain:
    """Follows the links between entries in seq order, remembering a window of recent hashes.

    In an intact log each entry's ``prev_hash`` is the hash of the entry stored just before it, and every
    hash is pointed at once. A link to a hash seen earlier but not just before is the second half of a
    reordering (or, if that hash was pointed at already, an inserted entry); a link to a hash not seen yet
    waits for it: when it turns up later the two entries were reordered, when it never does the entry it
    names is gone.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: OrderedDict[str, int] = OrderedDict()  # hash -> seq of recent entries
        self.claimed: OrderedDict[str, int] = OrderedDict()  # hash -> seq of the entry pointing at it
        self.wanted: OrderedDict[str, tuple[int, str]] = OrderedDict()  # prev_hash -> entry pointing at it
        self.expected_prev, self.expected_seq = GENESIS, 1
        self.problems: list[Problem] = []

    def step(self, seq: int, ident: str, prev_hash: str, digest: str, intact: bool) -> None:
        """Follow the link of entry ``seq`` (``intact``: its own hash checks out)."""
        gap = seq != self.expected_seq
        if gap:
            self.problems.append(Problem("deleted", self.expected_seq, last=seq - 1))
        # An altered entry's prev_hash proves nothing; entries after a gap point at a deleted one.
        if intact and not gap and prev_hash != self.expected_prev and prev_hash not in self.seen:
            self.wanted[prev_hash] = (seq, ident)
        if intact and not gap:
            first = self.claimed.get(prev_hash)
            if first is not None:
                predecessor = self.seen.get(prev_hash, 0)
                detail = f"entries {first} and {seq} both follow entry {predecessor}: one was inserted"
                self.problems.append(Problem("inserted", seq, ident, other=first, detail=detail))
            self.claimed[prev_hash] = seq
        waiting = self.wanted.pop(digest, None)
        if waiting is not None:
            self.problems.append(Problem("reordered", waiting[0], waiting[1], other=seq))
        self.seen[digest] = seq
        for table in (self.seen, self.claimed):
            while len(table) > self.window:
                table.popitem(last=False)
        while len(self.wanted) > self.window:
            self._unresolved(*self.wanted.popitem(last=False)[1])
        self.expected_prev, self.expected_seq = digest, seq + 1

    def _unresolved(self, seq: int, ident: str) -> None:
        detail = "the entry before it was altered and rehashed, or deleted and the log renumbered"
        self.problems.append(Problem("broken", seq, ident, detail=detail))

    def finish(self) -> None:
        """Report the links that never found their entry."""
        for seq, ident in self.wanted.values():
            self._unresolved(seq, ident)
        self.wanted.clear()


def verify(
    conn: Connection, algorithm: str | None = None, *, chunk: int = 1000, window: int = 10_000
) -> list[Problem]:
    """Check every entry's hash and the links between them, in seq order; the problems found (in order).

    Checks the entries up to the head recorded when it starts (appends made meanwhile come after it), then
    that no entry lies beyond the head. ``algorithm``: when given, entries hashed with another one are
    reported. Reorderings are recognised within ``window`` entries.
    """
    start = head(conn)
    newest = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar()
    chain = _Chain(window)
    problems = chain.problems
    if start is None and newest is not None:
        problems.append(Problem("head", int(newest), detail="the record of the chain's head is missing"))
    last, last_id = 0, ""
    for rows in _chunks(conn, start[0] if start else int(newest or 0), chunk):
        for row in rows:
            seq, ident, prev_hash, digest = int(row.seq), str(row.id), str(row.prev_hash), str(row.hash)
            content = AuditRow(*row[1:-2])
            content = content._replace(event=bytes(content.event))
            try:
                intact = chain_hash(content.algorithm, prev_hash, content) == digest
            except ValueError:
                intact = False
            if not intact:
                problems.append(Problem("altered", seq, ident))
            elif algorithm is not None and content.algorithm != algorithm:
                problems.append(Problem("algorithm", seq, ident, detail=f"hashed with {content.algorithm}"))
            chain.step(seq, ident, prev_hash, digest, intact)
            last, last_id = seq, ident
        problems.extend(_index_problems(conn, rows))
    chain.finish()
    if start is not None:
        problems.extend(_head_problems(start, last, last_id, chain))
        # One statement, one snapshot: the newest entry against the head appenders have recorded since.
        newest, head_seq = conn.execute(text(_BEYOND)).one()
        if newest is not None and int(newest) > int(head_seq or 0):
            problems.append(Problem("added", int(head_seq or 0) + 1, last=int(newest)))
    problems.sort(key=lambda p: (p.seq, p.kind))
    return problems


def _head_problems(recorded: tuple[int, str], last: int, last_id: str, chain: _Chain) -> list[Problem]:
    head_seq, head_hash = recorded
    if head_seq > last:
        return [Problem("deleted", last + 1, last=head_seq)]
    # A head naming another recent entry: the newest entries were reordered (reported already).
    if head_hash != chain.expected_prev and head_hash not in chain.seen:
        return [Problem("altered", last, last_id, detail="rewritten with a new hash")]
    return []
