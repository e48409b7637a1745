"""The matching index shared by a host's worker processes, and kept fresh by PostgreSQL.

- ``Generations``: a folder of index files (``capex.matching.store``), numbered; a manifest
  names the newest. One process at a time builds the next (an exclusive ``flock``); every
  worker maps the newest copy-on-write, so the host holds the arrays once.
- ``build_generation`` (in ``capex.services.matches``): read every volunteer, build, write the
  next file, point the manifest at it; ``GenerationBuilder`` runs it in a process of its own
  for a large population (``capex matching build``), whose memory goes back to the system
  when it ends.
- ``ChangeListener``: ``LISTEN`` on PostgreSQL for the statement-level triggers that
  migration 0011 put on ``volunteers`` and ``skills``: a committed change wakes the workers,
  instead of each polling the database twice a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from capex.matching import MatchIndex
from capex.matching.store import IndexFileError, load_index, save_index

logger = logging.getLogger("capex.matching")

MANIFEST = "current.json"
LOCK = "build.lock"
# The channel the triggers of migration 0011 notify on.
CHANNEL = "capex_matching"


@dataclass(frozen=True, slots=True)
class Generation:
    """One index file of the folder: its number and path."""

    number: int
    path: Path


@dataclass(frozen=True, slots=True)
class GenerationMeta:
    """What a generation was built from, kept in its file."""

    number: int
    week_start: datetime
    taxonomy: tuple[int, datetime | None]
    watermark: datetime

    def to_json(self) -> dict[str, Any]:
        count, latest = self.taxonomy
        return {
            "generation": self.number,
            "week_start": self.week_start.isoformat(),
            "taxonomy": [count, None if latest is None else latest.isoformat()],
            "watermark": self.watermark.isoformat(),
        }

    @classmethod
    def from_json(cls, meta: Mapping[str, Any]) -> GenerationMeta:
        count, latest = meta["taxonomy"]
        return cls(
            number=int(meta["generation"]),
            week_start=datetime.fromisoformat(meta["week_start"]),
            taxonomy=(int(count), None if latest is None else datetime.fromisoformat(latest)),
            watermark=datetime.fromisoformat(meta["watermark"]),
        )


class Generations:
    """The index files of one host's folder.

    Parameters
    ----------
    directory : Path
        Created (mode 0700) if missing. One folder per database: ``capex serve`` makes a
        fresh one per run.
    build : callable, optional
        Writes the next generation into the folder (``build_generation``, in this process
        or another); called with the folder's build lock held.
    """

    def __init__(self, directory: Path, build: Callable[[Path], None] | None = None) -> None:
        self.directory = directory
        self._build = build
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._seen: tuple[int, int, int] | None = None  # the manifest last read: inode, mtime, size
        self._latest: Generation | None = None

    def latest(self) -> Generation | None:
        """The newest generation the manifest names, None before the first."""
        manifest = self.directory / MANIFEST
        try:
            status = manifest.stat()
        except FileNotFoundError:
            return None
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        if seen != self._seen:
            try:
                named = json.loads(manifest.read_text())
                self._latest = Generation(int(named["generation"]), self.directory / named["file"])
            except (OSError, ValueError, KeyError, TypeError):
                return self._latest  # being replaced this instant: the last one read
            self._seen = seen
        return self._latest

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[bool]:
        """Hold the folder's build lock if no other process does; yields whether it is held."""
        with open(self.directory / LOCK, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def build(self) -> None:
        """Write the next generation (call with ``build_lock`` held)."""
        if self._build is None:
            raise RuntimeError("this folder was opened without a way to build")
        self._build(self.directory)

    def stop(self) -> None:
        """End a build under way in another process, if the builder can."""
        stop = getattr(self._build, "stop", None)
        if callable(stop):
            stop()

    def publish(self, index: MatchIndex, meta: GenerationMeta, *, headroom: float) -> Path:
        """Write ``index`` as generation ``meta.number``, name it in the manifest, and remove
        the files of older generations (a process still mapping one keeps its mapping)."""
        name = f"generation-{meta.number}.idx"
        save_index(index, self.directory / name, headroom=headroom, meta=meta.to_json())
        temporary = self.directory / f".{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({"generation": meta.number, "file": name}))
        os.replace(temporary, self.directory / MANIFEST)
        for old in self.directory.glob("generation-*.idx"):
            if old.name != name:
                old.unlink(missing_ok=True)
        return self.directory / name

    @staticmethod
    def attach(generation: Generation) -> tuple[MatchIndex, GenerationMeta] | None:
        """Map a generation's file; None when it is gone (a newer one replaced it)."""
        try:
            index, meta = load_index(generation.path)
        except FileNotFoundError:
            return None
        except IndexFileError:
            logger.warning("matching index file %s is unreadable; skipped", generation.path)
            return None
        return index, GenerationMeta.from_json(meta)


class ChangeListener:
    """A thread that ``LISTEN``s on PostgreSQL and calls back when profiles or skills change.

    ``on_change`` runs once the connection listens (to catch up on what happened while it
    did not), then after each burst of notifications (gathered for ``debounce`` seconds);
    from the first notification of a burst until a poll reads it, ``pending`` is True, so
    that the owner's queries can catch up themselves rather than answer without it;
    ``on_tick`` runs every ``tick`` seconds. Both run in the listener's thread. While the
    connection is down, ``listening`` is False (the owner then polls instead) and the
    thread reconnects with a growing pause; the loss is logged once, not per attempt.
    """

    def __init__(
        self,
        dsn: str,
        on_change: Callable[[], None],
        on_tick: Callable[[], None],
        *,
        tick: float = 1.0,
        debounce: float = 0.05,
        connect_timeout: int = 3,
    ) -> None:
        self.dsn = dsn
        self.on_change = on_change
        self.on_tick = on_tick
        self.tick = tick
        self.debounce = debounce
        self.connect_timeout = connect_timeout
        self.listening = False
        # A change was notified that no poll has read yet.
        self.pending = False
        self.wakeups = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="capex-matching-listener", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick + self.connect_timeout + 1)

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=self.connect_timeout
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    if pause > 0.5:
                        logger.warning("matching: listening for changes again")
                    pause = 0.5
                    self._call(self.on_change)
                    self._listen(connection)
            except (psycopg.Error, OSError) as error:
                if self.listening or pause == 0.5:
                    logger.warning(
                        "matching: not listening for changes (%s); polling until it is back",
                        type(error).__name__,
                    )
                self.listening = False
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
        self.listening = False

    def _listen(self, connection: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            woken = any(True for _ in connection.notifies(timeout=self.tick, stop_after=1))
            if woken:
                # A query that starts from now on catches up first (the owner's ``pending``
                # check), so the change is in any answer that follows its commit.
                self.pending = True
                # A burst (a bulk import, a busy minute) is one catch-up, not one per row.
                time.sleep(self.debounce)
                for _ in connection.notifies(timeout=0.001):
                    pass
                self.wakeups += 1
                self._call(self.on_change)
            self._call(self.on_tick)

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as error:  # the database went away mid-poll, say: keep listening
            logger.warning("matching: catching up failed (%s: %s)", type(error).__name__, error)


def postgres_dsn(url: str) -> str | None:
    """A libpq address for a SQLAlchemy PostgreSQL URL; None for another database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
