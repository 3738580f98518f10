"""Saved blends in the style library: save, list, delete, and resolve a name or spec to a prior."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from styles.blend import BlendError, BlendSpec, is_blend_text, normalise, parse_blend
from styles.blend_prior import BlendPrior
from styles.errors import StyleExists, StyleNotFound, check_tokenizer
from styles.prior import StylePrior

if TYPE_CHECKING:
    from styles.store import StyleStore


@dataclass(frozen=True)
class SavedBlend:
    """A named blend as stored: its parts (normalised weights) and those parts no longer in the library."""

    name: str
    spec: BlendSpec
    missing: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "blend": [{"style": n, "weight": w} for n, w in self.spec.parts],
                "missing": list(self.missing), "created_at": self.created_at, "updated_at": self.updated_at}


def _blend_row(store: StyleStore, name: str) -> tuple[int, str, str, str] | None:
    try:
        row = store.conn.execute("SELECT id, name, created_at, updated_at FROM blends WHERE name = ?",
                                 (str(name).strip(),)).fetchone()
    except sqlite3.OperationalError:  # a library opened read-only before its upgrade has no blends table
        return None
    return None if row is None else (int(row[0]), row[1], row[2], row[3])


def find_blend(store: StyleStore, name: str) -> SavedBlend | None:
    """The saved blend of that name (case-insensitive), or None."""
    row = _blend_row(store, name)
    if row is None:
        return None
    bid, canonical, created, updated = row
    parts = store.conn.execute("SELECT style_name, weight FROM blend_parts WHERE blend_id = ? ORDER BY seq",
                               (bid,)).fetchall()
    spec = BlendSpec(tuple((str(n), float(w)) for n, w in parts))
    missing = tuple(n for n in spec.names if store.find_style(n) is None)
    return SavedBlend(canonical, spec, missing, created, updated)


def list_blends(store: StyleStore) -> list[SavedBlend]:
    """Every saved blend, by name."""
    try:
        names = [r[0] for r in store.conn.execute("SELECT name FROM blends ORDER BY name COLLATE NOCASE")]
    except sqlite3.OperationalError:  # no blends table (read-only library not yet upgraded)
        return []
    return [b for b in (find_blend(store, n) for n in names) if b is not None]


def save_blend(store: StyleStore, name: str, spec: BlendSpec | str) -> SavedBlend:
    """Save (or replace) the blend `name`; every part must be an existing style (not another blend)."""
    from styles.store import check_name, now

    name = check_name(name)
    spec = parse_blend(spec) if isinstance(spec, str) else normalise(spec.parts)
    if is_blend_text(name):
        raise BlendError(f"a blend's name cannot contain ':' ('{name}'): it would read as a blend of styles")
    with store.transaction():
        if store.find_style(name) is not None:
            raise StyleExists(f"a style named '{name}' already exists; choose another name for the blend")
        parts = [(_part_style(store, part), w) for part, w in spec.parts]
        stamp = now()
        row = _blend_row(store, name)
        if row is None:
            cur = store.conn.execute("INSERT INTO blends (name, created_at, updated_at) VALUES (?, ?, ?)",
                                     (name, stamp, stamp))
            bid = int(cur.lastrowid or 0)
        else:
            bid = row[0]
            store.conn.execute("UPDATE blends SET name = ?, updated_at = ? WHERE id = ?", (name, stamp, bid))
            store.conn.execute("DELETE FROM blend_parts WHERE blend_id = ?", (bid,))
        store.conn.executemany("INSERT INTO blend_parts (blend_id, seq, style_name, weight) VALUES (?, ?, ?, ?)",
                               [(bid, i, n, w) for i, (n, w) in enumerate(parts)])
    saved = find_blend(store, name)
    assert saved is not None
    return saved


def _part_style(store: StyleStore, name: str) -> str:
    record = store.find_style(name)
    if record is not None:
        return record.name
    if _blend_row(store, name) is not None:
        raise BlendError(f"'{name}' is a blend: a blend's parts must be styles")
    raise StyleNotFound(f"no style named '{name}' for the blend (see `stylesteer styles list`)")


def delete_blend(store: StyleStore, name: str) -> bool:
    """Delete the saved blend `name`; False when there is none (inside or outside a transaction)."""
    with store.transaction():
        row = _blend_row(store, name)
        if row is not None:
            store.conn.execute("DELETE FROM blends WHERE id = ?", (row[0],))
    return row is not None


def rename_blend(store: StyleStore, old: str, new: str) -> bool:
    """Rename a saved blend; False when `old` is not one."""
    from styles.store import check_name, now

    new = check_name(new)
    with store.transaction():
        row = _blend_row(store, old)
        if row is None:
            return False
        if is_blend_text(new):
            raise BlendError(f"a blend's name cannot contain ':' ('{new}')")
        other = _blend_row(store, new)
        if store.find_style(new) is not None or (other is not None and other[0] != row[0]):
            raise StyleExists(f"a style or blend named '{new}' already exists")
        store.conn.execute("UPDATE blends SET name = ?, updated_at = ? WHERE id = ?", (new, now(), row[0]))
    return True


def rename_style_in_blends(store: StyleStore, old: str, new: str) -> None:
    """Inside the caller's transaction: blends that use style `old` now use `new`."""
    try:
        store.conn.execute("UPDATE blend_parts SET style_name = ? WHERE style_name = ?", (new, old))
    except sqlite3.OperationalError:  # a library opened read-only before its upgrade has no blends table
        pass


def blend_named(store: StyleStore, name: str) -> bool:
    """Whether a saved blend has this name (False on a library without the blends table)."""
    return _blend_row(store, name) is not None


def resolve(store: StyleStore, text: str) -> tuple[str, BlendSpec] | None:
    """(display name, spec) when `text` names a saved blend or is written `NAME:W,...`; None for one style.

    A style's own name wins over both; a saved blend with a missing part raises BlendError.
    """
    if store.find_style(text) is not None:
        return None
    saved = find_blend(store, text)
    if saved is not None:
        if saved.missing:
            missing = ", ".join(f"'{m}'" for m in saved.missing)
            raise BlendError(f"the blend '{saved.name}' uses {missing}, which is no longer in the library; "
                             f"save it again without it (`stylesteer styles blend {saved.name} ...`) or delete it")
        return saved.name, saved.spec
    if is_blend_text(text):
        spec = parse_blend(text)
        for part in spec.names:
            _part_style(store, part)
        return spec.text(), spec
    return None


def load_blend_prior(store: StyleStore, name: str, spec: BlendSpec, *, device: str = "cpu", settings: Any = None,
                     fingerprint: str | None = None, model: str | None = None) -> BlendPrior:
    """The blend's prior; with `fingerprint`, each part is first checked against that tokenizer
    (the usual per-style rebuild message)."""
    if fingerprint is not None:
        for part in spec.names:
            record = store.find_style(part)
            if record is not None:
                check_tokenizer(record.name, record.tokenizer_fingerprint, fingerprint, model=model)
    priors = []
    for part, weight in spec.parts:
        prior = store.load_prior(part, device=device, settings=settings)
        if not isinstance(prior, StylePrior):  # pragma: no cover - parts are styles (resolve checked)
            raise BlendError(f"'{part}' in the blend is not a style")
        priors.append((prior, weight))
    return BlendPrior(priors, name=name)
