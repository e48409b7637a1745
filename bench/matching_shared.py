"""One matching index per host, mapped by every worker, against one per worker (issue 13, item 6).

    .venv/bin/python bench/matching_shared.py --volunteers 1000000 --workers 2

Each side runs in fresh processes (spawned), so that no process's memory counts another's:

- **naive** (the way before): every worker builds its own index from the records, as each
  worker process used to at its first request. One worker is measured; a host of W
  workers holds W such copies.
- **shared**: one builder process builds and writes the file (``capex.matching.store``),
  then W workers map it at once and answer queries; each then takes 1% of the population
  as changed profiles (upserts), as a day of edits would, and answers again.

For each worker: the seconds before its first answer (build, or map), its resident memory
(RSS), what of it is its own (USS: private pages) and its proportional share (PSS: shared
pages divided among the processes mapping them), from ``/proc/self/smaps_rollup``; and
the median query time (after one warm-up pass, one worker at a time). The records are the
demo population (``capex.demo``), the same seed in every process. Prints a table; the
host's memory is the sum of the workers' PSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WEEK = datetime(2026, 12, 14, tzinfo=UTC)


def memory_mb() -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of this process, in MB."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def _records(volunteers: int, seed: int) -> list:
    from matching import demo_records  # bench/matching.py

    return demo_records(volunteers, seed)


def _space():
    from matching import taxonomy

    from capex.matching import SkillSpace

    return SkillSpace({skill: parent for skill, parent, _ in taxonomy()})


def _query_ms(index, ids: list[int]) -> float:
    times = []
    for volunteer_id in ids:
        started = time.perf_counter()
        index.query(volunteer_id, role="learner", limit=20)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass
class WorkerReport:
    mode: str
    ready_seconds: float
    memory: dict[str, float]
    query_ms: float
    after_changes: dict[str, float] | None = None


def naive_worker(volunteers: int, seed: int, queries: int, out: multiprocessing.Queue) -> None:
    import gc

    from capex.matching import MatchIndex

    records = _records(volunteers, seed)
    started = time.perf_counter()
    index = MatchIndex(_space(), WEEK).build(records)
    ready = time.perf_counter() - started
    ids = [record.id for record in records[:: max(1, len(records) // queries)]][:queries]
    del records
    gc.collect()
    _query_ms(index, ids)  # the same warm-up as a mapped worker's
    query_ms = _query_ms(index, ids)
    out.put(WorkerReport("naive", ready, memory_mb(), query_ms))


def build_file(volunteers: int, seed: int, path: str, out: multiprocessing.Queue) -> None:
    from capex.matching import MatchIndex
    from capex.matching.store import save_index

    records = _records(volunteers, seed)
    started = time.perf_counter()
    index = MatchIndex(_space(), WEEK).build(records)
    built = time.perf_counter() - started
    started = time.perf_counter()
    size = save_index(index, path)
    out.put((built, time.perf_counter() - started, size / 1e6))


def shared_worker(
    path: str,
    queries: int,
    changes: list,
    measured: multiprocessing.Barrier,
    turn: multiprocessing.Lock,
    out: multiprocessing.Queue,
) -> None:
    from capex.matching.store import load_index

    started = time.perf_counter()
    index, _ = load_index(path)
    ready = time.perf_counter() - started
    ids = index._ids.values[:: max(1, len(index) // queries)][:queries].tolist()
    with turn:  # one worker times its queries at a time, as the naive one did alone
        _query_ms(index, ids)  # first touches of the mapped pages
        query_ms = _query_ms(index, ids)
    measured.wait()  # every worker maps the file before any reads its memory
    before = memory_mb()
    index.upsert(changes)
    _query_ms(index, ids)
    after = memory_mb()
    measured.wait()
    out.put(WorkerReport("shared", ready, before, query_ms, after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = spawn.Queue()

    print(f"{args.volunteers:,} volunteers, {args.workers} workers", flush=True)
    naive = spawn.Process(
        target=naive_worker, args=(args.volunteers, args.seed, args.queries, results)
    )
    naive.start()
    naive_report: WorkerReport = results.get()
    naive.join()

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "generation-1.idx")
        builder = spawn.Process(target=build_file, args=(args.volunteers, args.seed, path, results))
        builder.start()
        built, written, size_mb = results.get()
        builder.join()
        # A day of edits: 1% of the population saves a changed profile.
        changes = [
            replace(record, open_slots=record.open_slots + 1)
            for record in _records(args.volunteers, args.seed)[::100]
        ]
        barrier = spawn.Barrier(args.workers)
        turn = spawn.Lock()
        workers = [
            spawn.Process(
                target=shared_worker, args=(path, args.queries, changes, barrier, turn, results)
            )
            for _ in range(args.workers)
        ]
        for worker in workers:
            worker.start()
        shared_reports: list[WorkerReport] = [results.get() for _ in workers]
        for worker in workers:
            worker.join()

    print(
        f"\nshared file: built in {built:.1f} s, written in {written:.2f} s, {size_mb:.0f} MB; "
        f"{len(changes):,} changed profiles upserted in each worker afterwards\n"
    )
    print(
        "| way | worker | ready after (s) | RSS MB | own (USS) MB | PSS MB | query p50 ms |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    memory = naive_report.memory
    print(
        f"| naive: each worker builds | any | {naive_report.ready_seconds:.1f} | "
        f"{memory['rss']:.0f} | {memory['uss']:.0f} | {memory['pss']:.0f} | "
        f"{naive_report.query_ms:.1f} |"
    )
    for number, report in enumerate(shared_reports, start=1):
        for when, memory in (("mapped", report.memory), ("+1% changes", report.after_changes)):
            print(
                f"| shared, {when} | {number} | {report.ready_seconds:.2f} | "
                f"{memory['rss']:.0f} | {memory['uss']:.0f} | {memory['pss']:.0f} | "
                f"{report.query_ms:.1f} |"
            )
    naive_host = args.workers * naive_report.memory["pss"]
    shared_host = sum(report.after_changes["pss"] for report in shared_reports)
    ready_shared = max(report.ready_seconds for report in shared_reports)
    print(
        f"\nhost memory for {args.workers} workers (sum of PSS): naive {naive_host:.0f} MB, "
        f"shared {shared_host:.0f} MB after the changes: {naive_host / shared_host:.1f}x less; "
        f"a worker answers after {ready_shared:.2f} s instead of "
        f"{naive_report.ready_seconds:.1f} s: "
        f"{naive_report.ready_seconds / ready_shared:.0f}x sooner (the build itself, "
        f"{built:.1f} s, runs once per host, beside the answers)."
    )


if __name__ == "__main__":
    main()
