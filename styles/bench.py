"""Side-by-side measurements of the style library: import vs tokenizer vs naive, activation, disk."""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from styles import importer, readers
from styles.store import StyleStore

CORPUS_FILES = ("tinyshakespeare.txt", "sherlock_holmes.txt", "kjv_bible.txt")
ACTIVATION_FILE = "kjv_bible.txt"


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def _tokenize_only(chunker: importer.ChunkTokenizer, texts: list[str]) -> int:
    """The tokenizer alone on the same text, called exactly as the importer calls it."""
    total = 0
    for text in texts:
        first = True
        batch: list[str] = []
        size = 0
        for piece in readers.split_lines(text):
            batch.append(piece)
            size += len(piece)
            if size >= importer.BATCH_CHARS:
                total += sum(a.size for a in chunker.encode_pieces(batch, doc_start=first))
                first, batch, size = False, [], 0
        if batch:
            total += sum(a.size for a in chunker.encode_pieces(batch, doc_start=first))
    return total


def _naive_import(tokenizer: Any, files: list[Path], db_path: Path) -> tuple[int, float]:
    """The obvious way: encode each file, a Python Counter per order, one INSERT per row.

    Returns (tokens, seconds spent in the tokenizer), so the report can show both parts.
    """
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TABLE ngrams (n INTEGER, c1 INTEGER, c2 INTEGER, tok INTEGER, count INTEGER, "
        "PRIMARY KEY (n, c1, c2, tok))"
    )
    total = 0
    tokenize_seconds = 0.0
    with conn:  # one transaction: per-row commits would make the naive way far slower still
        for path in files:
            t = time.perf_counter()
            ids = tokenizer.encode(path.read_text(encoding="utf-8"), add_special_tokens=False)
            tokenize_seconds += time.perf_counter() - t
            total += len(ids)
            grams: Counter[tuple[int, int, int, int]] = Counter()
            grams.update((1, -1, -1, a) for a in ids)
            grams.update((2, -1, a, b) for a, b in itertools.pairwise(ids))
            grams.update((3, a, b, c) for a, b, c in zip(ids, ids[1:], ids[2:], strict=False))
            for (n, c1, c2, tok), count in grams.items():
                conn.execute(
                    "INSERT INTO ngrams (n, c1, c2, tok, count) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (n, c1, c2, tok) DO UPDATE SET count = count + excluded.count",
                    (n, c1, c2, tok, count),
                )
    conn.close()
    return total, tokenize_seconds


def run_styles_bench(
    tokenizer: Any,
    corpora_dir: Path | str,
    *,
    decode_step_seconds: float | None = None,
    repeats: int = 3,
    naive: bool = True,
) -> dict[str, Any]:
    """The style library's targets, measured side by side in one run (ratios, not absolute times).

    import_over_tokenizer: tokenizer-alone time / import time on the same files (>= 0.8 wanted).
    import_over_naive: naive import time / import time (>= 10 wanted); the naive import
      encodes each file in one call, counts with a Counter and INSERTs one row at a time.
    activate_seconds_per_million_tokens: StyleStore.load_prior on the KJV (about 1M tokens), scaled.
    prior_step_over_decode_step: one dense prior step (log_mix on one context) / one decode step.
    bytes_per_token: store file size / corpus tokens.
    """
    corpora = Path(corpora_dir)
    files = [corpora / name for name in CORPUS_FILES if (corpora / name).is_file()]
    if not files:
        raise FileNotFoundError(f"no corpora found in {corpora}")
    texts = [p.read_text(encoding="utf-8") for p in files]
    chunker = importer.ChunkTokenizer(tokenizer)
    out: dict[str, Any] = {"files": [p.name for p in files], "tokenizer_mode": chunker.mode}

    with tempfile.TemporaryDirectory(prefix="stylesteer-bench-") as tmp:
        tmpdir = Path(tmp)
        store_path = tmpdir / "bench.db"
        imported, timings = _import_versus_tokenizer(tokenizer, chunker, files, texts, store_path, repeats)
        out.update(imported)
        n_tokens = int(imported["n_tokens"])
        if naive:
            out.update(_import_versus_naive(tokenizer, files, tmpdir, *timings))
        else:
            out["import_over_naive"] = None

        out.update(_rows_versus_blobs(store_path, tmpdir))

        # Bytes on disk: the store holding all the corpora, checkpointed into one file.
        conn = sqlite3.connect(store_path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        out["bytes_per_token"] = round(store_path.stat().st_size / n_tokens, 3)

        out.update(_activation(tokenizer, corpora, tmpdir, repeats, decode_step_seconds))
    return out


def _import_versus_tokenizer(
    tokenizer: Any, chunker: importer.ChunkTokenizer, files: list[Path], texts: list[str], store_path: Path,
    repeats: int,
) -> tuple[dict[str, Any], tuple[float, float, float]]:
    """The import against the tokenizer alone on the same text, interleaved, so that a busy
    machine slows both sides alike; the first run's store is kept at `store_path`. Also returns the
    best times: tokenizer, import, import CPU."""
    _tokenize_only(chunker, texts[:1])  # warm the tokenizer's caches for both sides
    tok_times, imp_times, tok_cpu, imp_cpu = [], [], [], []
    for i in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        n_tokens = _tokenize_only(chunker, texts)
        tok_times.append(time.perf_counter() - t)
        tok_cpu.append(time.process_time() - c)
        path = store_path.with_name(f"run{i}.db")
        store = StyleStore(path)
        t, c = time.perf_counter(), time.process_time()
        report = importer.import_paths(store, "bench", files, tokenizer)
        imp_times.append(time.perf_counter() - t)
        imp_cpu.append(time.process_time() - c)
        store.close()
        if i == 0:
            path.rename(store_path)
        else:
            path.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert report.n_tokens == n_tokens, (report.n_tokens, n_tokens)
    t_tok, t_imp = min(tok_times), min(imp_times)
    results = {
        "n_tokens": n_tokens,
        "tokenizer_seconds": round(t_tok, 4),
        "import_seconds": round(t_imp, 4),
        "import_over_tokenizer": round(t_tok / t_imp, 3),
        # CPU seconds of all threads: the work ratio, less sensitive to a busy machine
        # than wall time (a shared machine slows the parallel tokenizer most).
        "import_over_tokenizer_cpu": round(min(tok_cpu) / min(imp_cpu), 3),
    }
    return results, (t_tok, t_imp, min(imp_cpu))


def _import_versus_naive(
    tokenizer: Any, files: list[Path], tmpdir: Path, t_tok: float, t_imp: float, cpu_imp: float
) -> dict[str, Any]:
    """The naive import (see _naive_import) against the import's best times."""
    c = time.process_time()
    t_naive, (_, t_naive_tok) = _best(lambda: _naive_import(tokenizer, files, tmpdir / "naive.db"), 1)
    extra = t_imp - t_tok
    return {
        "import_over_naive_cpu": round((time.process_time() - c) / cpu_imp, 2),
        "naive_seconds": round(t_naive, 4),
        # The naive tokenizer call (one string per file) is itself slower than the
        # importer's piecewise, parallel encoding; this shows how much of the gap it is.
        "naive_tokenize_seconds": round(t_naive_tok, 4),
        # Counting and storing alone: the naive Counter + row INSERTs against what the
        # import adds on top of the tokenizer (a difference of two timings: rough).
        "count_store_over_naive": round((t_naive - t_naive_tok) / extra, 1) if extra > 0.01 else None,
        "import_over_naive": round(t_naive / t_imp, 2),
    }


def _rows_versus_blobs(store_path: Path, tmpdir: Path) -> dict[str, float]:
    """Why counts are stored as packed arrays: writing the same aggregated counts as one
    row per n-gram (WITHOUT ROWID, batched upserts) versus as three blobs."""
    store = StyleStore(store_path)
    try:
        sid = store.style_id("bench")
        pairs = store.read_pairs(sid)
        rows_db = sqlite3.connect(tmpdir / "rows.db")
        rows_db.execute(
            "CREATE TABLE ngram (n INTEGER, ctx INTEGER, tok INTEGER, count INTEGER, "
            "PRIMARY KEY (n, ctx, tok)) WITHOUT ROWID"
        )
        vocab = store.get("bench").vocab_size
        t = time.perf_counter()
        with rows_db:
            for n, (keys, counts) in pairs.items():
                rows_db.executemany(
                    "INSERT INTO ngram VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (n, ctx, tok) DO UPDATE SET count = count + excluded.count",
                    zip([n] * keys.size, (keys // vocab).tolist(), (keys % vocab).tolist(), counts.tolist(),
                        strict=True),
                )
        t_rows = time.perf_counter() - t
        rows_db.close()
        t = time.perf_counter()
        with store.transaction():
            store.write_pairs(sid, pairs)
        t_blobs = time.perf_counter() - t
    finally:
        store.close()
    return {"counts_as_rows_seconds": round(t_rows, 4), "counts_as_blobs_seconds": round(t_blobs, 4)}


def _activation(
    tokenizer: Any, corpora: Path, tmpdir: Path, repeats: int, decode_step_seconds: float | None
) -> dict[str, Any]:
    path = corpora / ACTIVATION_FILE
    if not path.is_file():
        return {"activate_seconds_per_million_tokens": None, "prior_step_over_decode_step": None}
    store = StyleStore(tmpdir / "activate.db")
    try:
        importer.import_paths(store, "kjv", [path], tokenizer)
        n_tokens = store.get("kjv").n_tokens
        try:
            import styles.prior  # noqa: F401
        except ImportError:
            t, _ = _best(lambda: store.load_counts("kjv"), repeats)
            return {
                "activate_seconds_per_million_tokens": round(t * 1e6 / n_tokens, 4),
                "activate_note": "counts only (styles.prior not available)",
                "prior_step_over_decode_step": None,
            }
        t, prior = _best(lambda: store.load_prior("kjv"), repeats)
        result: dict[str, Any] = {
            "activate_tokens": n_tokens,
            "activate_seconds": round(t, 4),
            "activate_seconds_per_million_tokens": round(t * 1e6 / n_tokens, 4),
            "prior_step_over_decode_step": None,
        }
        step = _prior_step_seconds(prior, store.document_token_ids("kjv", store.document_ids("kjv")[0]))
        result["prior_step_seconds"] = round(step, 6)
        if decode_step_seconds:
            result["prior_step_over_decode_step"] = round(step / decode_step_seconds, 4)
        return result
    finally:
        store.close()


def _prior_step_seconds(prior: Any, ids: np.ndarray, steps: int = 50) -> float:
    """Mean time of one dense steering step of the prior (log_mix over one context)."""
    import torch

    rng = np.random.default_rng(0)
    starts = rng.integers(0, max(1, ids.size - 64), size=steps)
    contexts = [torch.as_tensor(ids[s : s + 64][None, :], dtype=torch.long) for s in starts]
    prior.log_mix(contexts[0])  # warm-up
    t = time.perf_counter()
    for ctx in contexts:
        prior.log_mix(ctx)
    return (time.perf_counter() - t) / steps
