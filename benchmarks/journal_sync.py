"""What a journal commit costs with synchronous=FULL (every commit synced, as Surtitle runs it) beside
NORMAL (what it ran before: a power cut could take the last commits), interleaved in one run.

    python -m benchmarks.journal_sync [--commits 200] [--folder DIR]

A live session commits twice a second, a few words each time; the folder decides the disk measured
(default: the temporary folder; pass the data folder's disk to measure that one).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from app.journal import Journal
from core.words import Word

WORDS_PER_COMMIT = 3  # half a second of speech


def time_commits(folder: Path, synchronous: str, commits: int) -> list[float]:
    journal = Journal(folder / f"journal-{synchronous.lower()}.sqlite3", commit_interval_s=float("inf"))
    journal._conn.execute(f"PRAGMA synchronous={synchronous}")  # the one knob compared here
    sid = journal.start_session("bench", "none")
    seconds = []
    for i in range(commits):
        t = i * 0.5
        journal.add_words(sid, [Word(f"w{i}-{k}", t + 0.1 * k, t + 0.1 * k + 0.08) for k in range(WORDS_PER_COMMIT)])
        start = time.perf_counter()
        journal.commit()
        seconds.append(time.perf_counter() - start)
    journal.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        for round_ in range(args.rounds):
            for mode in results:  # interleaved, so a drifting disk hits both alike
                folder = Path(scratch) / f"r{round_}"
                folder.mkdir(exist_ok=True)
                results[mode] += time_commits(folder, mode, args.commits)
    print(f"{args.rounds} rounds of {args.commits} commits, {WORDS_PER_COMMIT} words each, in "
          f"{args.folder or tempfile.gettempdir()} (SQLite {sqlite3.sqlite_version})")
    print(f"{'synchronous':<12} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}  share of a live session's time")
    for mode, seconds in results.items():
        ms = sorted(s * 1e3 for s in seconds)
        median, p90 = statistics.median(ms), ms[int(0.9 * (len(ms) - 1))]
        print(f"{mode:<12} {median:>10.2f} {p90:>8.2f} {ms[-1]:>8.2f}  {median / 500:.2%} (one commit per 500 ms)")


if __name__ == "__main__":
    main()
