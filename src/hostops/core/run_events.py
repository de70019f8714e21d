"""Where a run's time went, from ansible-runner's events (issue 20).

Every hostops command keeps its run's artifacts (``.../runner/artifacts/<id>/job_events``,
one JSON file per event). This module reads the per-host task results there: how long
each took, which were fact gatherings, which were apt tasks that found nothing to do.
``python -m hostops.core.run_events DIR`` prints a profile of the run(s) under DIR (an order's
``runs/<time>`` directory, or any directory above artifacts).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATHER_ACTIONS = frozenset(
    {"gather_facts", "ansible.builtin.gather_facts", "setup", "ansible.builtin.setup"}
)
# Actions that gather facts themselves when they must (their result then has them)
GATHERING_CHECKS = frozenset({"alteo.hostops.assert_each"})
APT_ACTIONS = frozenset({"apt", "ansible.builtin.apt"})
RESULT_EVENTS = frozenset({"runner_on_ok", "runner_on_failed", "runner_on_unreachable"})
# gather_subset of a read of /etc/ansible/facts.d alone (no collector of the min subset)
LOCAL_ONLY = frozenset({"!all", "!min", "local"})


@dataclass(frozen=True)
class TaskResult:
    """One task's result on one host (a skipped task has none)."""

    host: str
    task: str
    action: str
    duration: float
    changed: bool
    gather_subset: tuple[str, ...]
    # facts gathered by a task that is not setup (assert_each's gather_subset)
    gathered_facts: bool = False

    @property
    def reads_facts(self) -> bool:
        return self.action in GATHER_ACTIONS or self.gathered_facts

    @property
    def is_gathering(self) -> bool:
        """A fact gathering beyond a read of the local facts alone."""
        # '[local]' alone still runs the min subset's collectors: only '!min' spares them
        return self.reads_facts and not (
            "!min" in self.gather_subset and set(self.gather_subset) <= LOCAL_ONLY
        )

    @property
    def is_local_read(self) -> bool:
        return self.reads_facts and not self.is_gathering


def _subset(data: dict[str, Any]) -> tuple[str, ...]:
    """The gather_subset a setup task ran with (the implicit gathering: all)."""
    args = (data.get("res") or {}).get("invocation", {}).get("module_args") or {}
    subset = args.get("gather_subset") or (data.get("task_args") or {}).get("gather_subset")
    if isinstance(subset, str):
        subset = [s.strip() for s in subset.split(",")]
    return tuple(str(s) for s in subset or ("all",))


def job_event_files(directory: Path) -> list[Path]:
    """Every job event under DIRECTORY, in the order of the runs and of the events."""

    def order(path: Path) -> tuple[str, int]:
        counter = path.name.split("-", 1)[0]
        return (str(path.parent), int(counter) if counter.isdigit() else 0)

    return sorted(directory.rglob("job_events/*.json"), key=order)


def task_results(directory: Path) -> Iterator[TaskResult]:
    """The task results of the run(s) whose artifacts are under DIRECTORY."""
    for path in job_event_files(directory):
        try:
            event = json.loads(path.read_text())
        except (OSError, ValueError):  # an event being written
            continue
        if event.get("event") not in RESULT_EVENTS:
            continue
        data = event.get("event_data") or {}
        action = str(data.get("resolved_action") or data.get("task_action") or "")
        if data.get("task_action") in GATHER_ACTIONS:
            action = str(data["task_action"])
        gathered = action in GATHERING_CHECKS and "ansible_facts" in (data.get("res") or {})
        yield TaskResult(
            host=str(data.get("host", "")),
            task=str(data.get("task", "")),
            action=action,
            duration=float(data.get("duration") or 0.0),
            changed=bool((data.get("res") or {}).get("changed")),
            gather_subset=_subset(data) if action in GATHER_ACTIONS or gathered else (),
            gathered_facts=gathered,
        )


def gatherings_per_host(results: Sequence[TaskResult]) -> dict[str, int]:
    """How many fact gatherings (not counting reads of the local facts alone) each host had."""
    counts: Counter[str] = Counter()
    for result in results:
        if result.reads_facts:
            counts[result.host] += 0  # every host seen gathering or reading
        if result.is_gathering:
            counts[result.host] += 1
    return dict(counts)


def profile(results: Sequence[TaskResult], top: int = 15) -> str:
    """A run's time by kind of task, and its slowest tasks, as text."""
    by_action: dict[str, list[float]] = defaultdict(list)
    for result in results:
        kind = result.action
        if result.is_gathering:
            kind = "fact gathering"
        elif result.is_local_read:
            kind = "local facts read"
        elif result.action in APT_ACTIONS:
            kind = "apt (changed)" if result.changed else "apt (no change)"
        by_action[kind].append(result.duration)
    total = sum(r.duration for r in results)
    lines = [f"{len(results)} task results, {total:.1f} s of host time in all", ""]
    lines.append(f"{'kind of task':<40} {'count':>5} {'seconds':>8} {'each':>6}")
    for kind, durations in sorted(by_action.items(), key=lambda item: -sum(item[1])):
        seconds = sum(durations)
        lines.append(
            f"{kind[:40]:<40} {len(durations):>5} {seconds:>8.1f} {seconds / len(durations):>6.2f}"
        )
    lines += ["", "fact gatherings per host: " + ", ".join(
        f"{host} {count}" for host, count in sorted(gatherings_per_host(results).items())
    ), "", f"slowest {top}:"]  # fmt: skip
    for result in sorted(results, key=lambda r: -r.duration)[:top]:
        lines.append(f"{result.duration:>7.2f} s  {result.host}  {result.task}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hostops.core.run_events",
        description="Where a run's time went, from ansible-runner's job events.",
    )
    parser.add_argument("directory", type=Path, help="a run's directory (or any above it)")
    parser.add_argument("--top", type=int, default=15, help="slowest tasks shown (15)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"directory {str(args.directory)!r} does not exist", file=sys.stderr)
        return 2
    results = list(task_results(args.directory))
    if not results:
        print(f"directory {str(args.directory)!r} holds no job events", file=sys.stderr)
        return 2
    print(profile(results, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
