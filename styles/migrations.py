"""The style store's schema, created and upgraded by numbered migrations (never edit a landed one)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "stylesteer.styles"

migrations = Migrations(MIGRATION_SET)


# m001's statements, one per execute: executescript() would commit the migration's
# transaction half way. The text is what sqlite_master records: never edit it.
_M001 = (
        """
        CREATE TABLE styles (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            tokenizer_name TEXT NOT NULL,
            tokenizer_fingerprint TEXT NOT NULL,
            vocab_size INTEGER NOT NULL CHECK (vocab_size > 0),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            style_id INTEGER NOT NULL REFERENCES styles(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            n_bytes INTEGER NOT NULL,
            n_chars INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL,
            encoding TEXT NOT NULL,
            stored_bytes INTEGER NOT NULL,
            imported_at TEXT NOT NULL,
            UNIQUE (style_id, sha256)
        )
        """,
    # Text and token ids of a document in pieces of about a megabyte, so that a
    # huge file is written and read back with bounded memory.
        """
        CREATE TABLE chunks (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            n_chars INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL,
            text BLOB NOT NULL,
            tokens BLOB NOT NULL,
            PRIMARY KEY (document_id, seq)
        )
        """,
    # The counts of one order of one style as packed arrays: keys are n-grams
    # packed into int64 (base = vocab size), sorted, so activation reads three
    # blobs instead of millions of rows (see StyleStore.load_counts).
        """
        CREATE TABLE ngram_counts (
            style_id INTEGER NOT NULL REFERENCES styles(id) ON DELETE CASCADE,
            n INTEGER NOT NULL CHECK (n BETWEEN 1 AND 3),
            n_distinct INTEGER NOT NULL,
            n_total INTEGER NOT NULL,
            keys BLOB NOT NULL,
            counts BLOB NOT NULL,
            PRIMARY KEY (style_id, n)
        )
        """,
        """
        CREATE TABLE skipped_files (
            style_id INTEGER NOT NULL REFERENCES styles(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            reason TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (style_id, path)
        )
        """,
    "CREATE INDEX documents_by_style ON documents(style_id)",
)


@migrations()
def m001_create_tables(db: Database) -> None:
    """Styles, their documents (text and token ids, compressed, in chunks), packed n-gram counts."""
    for statement in _M001:
        db.execute(statement)


# Saved blends: a name and its styles' weights. Parts name their style (not its id), so that
# deleting a style leaves the blend in place to say which part is missing; renaming a style
# renames it in its blends too (StyleStore.rename).
_M002 = (
        """
        CREATE TABLE blends (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE blend_parts (
            blend_id INTEGER NOT NULL REFERENCES blends(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            style_name TEXT NOT NULL COLLATE NOCASE,
            weight REAL NOT NULL CHECK (weight > 0),
            PRIMARY KEY (blend_id, seq)
        )
        """,
)


@migrations()
def m002_blends(db: Database) -> None:
    """Saved blends of styles (named weighted mixtures)."""
    for statement in _M002:
        db.execute(statement)


def apply(db: Database) -> None:
    """Bring `db` up to the newest schema."""
    migrations.apply(db)


def known_names() -> list[str]:
    """Names of every migration this version knows, in order (all pending on a blank database)."""
    return [m.name for m in migrations.pending(Database(memory=True))]


def is_current(db: Database) -> bool:
    """Whether `db` has every migration this version knows (read-only: writes nothing)."""
    return not migrations.pending(db)
