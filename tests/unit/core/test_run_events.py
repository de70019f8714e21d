"""hostops.core.run_events: fact gatherings and time per kind of task, from runner's events.

The lab tests (test_order_apply.py) count a real order's gatherings with it; these cases
are its controls: what it must count, what it must not, and that several are seen as
several (so a count of one is not the only answer it can give).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostops.core import run_events


def write_events(directory: Path, events: list[dict[str, Any]]) -> Path:
    """Job events as ansible-runner writes them: artifacts/<id>/job_events/N-uuid.json."""
    job_events = directory / "runner" / "artifacts" / "run-1" / "job_events"
    job_events.mkdir(parents=True)
    for number, event in enumerate(events, start=1):
        (job_events / f"{number}-{number:08x}.json").write_text(json.dumps(event))
    return directory


def result(
    host: str,
    action: str,
    subset: list[str] | None = None,
    event: str = "runner_on_ok",
    **extra: Any,
) -> dict[str, Any]:
    args = {} if subset is None else {"gather_subset": subset}
    facts = {"ansible_facts": extra.pop("ansible_facts")} if "ansible_facts" in extra else {}
    return {
        "event": event,
        "event_data": {
            "host": host,
            "task": f"{action} {subset}",
            "task_action": action,
            "resolved_action": action if "." in action else f"ansible.builtin.{action}",
            "task_args": dict(args),
            "duration": extra.pop("duration", 1.0),
            "res": {
                "changed": extra.pop("changed", False),
                "invocation": {"module_args": args},
                **facts,
            },
        },
    }


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # the implicit gathering of a play counts
        ([result("web1", "gather_facts")], {"web1": 1}),
        # five plays gathering: five (the count a multi-play run had before issue 20)
        ([result("web1", "gather_facts")] * 5, {"web1": 5}),
        # a setup with the min subset gathers (it runs every min collector)
        ([result("web1", "gather_facts"), result("web1", "ansible.builtin.setup", ["min"])],
         {"web1": 2}),
        # [local] alone still means min + local: a gathering
        ([result("web1", "ansible.builtin.setup", ["local"])], {"web1": 1}),
        # a read of /etc/ansible/facts.d alone does not count, but the host is seen
        ([result("web1", "gather_facts"),
          result("web1", "ansible.builtin.setup", ["!all", "!min", "local"])], {"web1": 1}),
        ([result("web1", "ansible.builtin.setup", ["!all", "!min", "local"])], {"web1": 0}),
        # per host
        ([result("web1", "gather_facts"), result("bk1", "gather_facts"),
          result("bk1", "setup", ["min", "distribution"])], {"web1": 1, "bk1": 2}),
        # a skipped setup (an earlier play had gathered) is no gathering
        ([result("web1", "gather_facts"), result("web1", "setup", event="runner_on_skipped")],
         {"web1": 1}),
        # other tasks are not gatherings
        ([result("web1", "ansible.builtin.apt")], {}),
        # a role's checks that gathered the facts they needed (their result has them) count;
        # the same checks that found the facts there (no facts in the result) do not
        ([result("web1", "gather_facts"),
          result("web1", "alteo.hostops.assert_each", ["min", "distribution"], ansible_facts={}),
          result("web1", "alteo.hostops.assert_each", ["min", "distribution"])], {"web1": 2}),
        ([result("web1", "alteo.hostops.assert_each", ["min", "distribution"])], {}),
    ],
)  # fmt: skip
def test_gatherings_per_host(
    tmp_path: Path, events: list[dict[str, Any]], expected: dict[str, int]
) -> None:
    results = list(run_events.task_results(write_events(tmp_path, events)))
    assert run_events.gatherings_per_host(results) == expected


def test_profile_sums_apt_tasks_that_changed_nothing(tmp_path: Path) -> None:
    events = [
        result("web1", "gather_facts", duration=2.0),
        result("web1", "ansible.builtin.apt", duration=3.0),
        result("web1", "ansible.builtin.apt", duration=1.5),
        result("web1", "ansible.builtin.apt", duration=20.0, changed=True),
        {"event": "playbook_on_stats", "event_data": {}},
    ]
    text = run_events.profile(list(run_events.task_results(write_events(tmp_path, events))))
    assert "4 task results, 26.5 s" in text
    lines = {line[:40].strip(): line[40:].split() for line in text.splitlines() if line[:40]}
    assert lines["apt (no change)"] == ["2", "4.5", "2.25"]
    assert lines["apt (changed)"] == ["1", "20.0", "20.00"]
    assert lines["fact gathering"] == ["1", "2.0", "2.00"]
    assert "fact gatherings per host: web1 1" in text


def test_cli_refuses_a_directory_without_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_events.main([str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert run_events.main([str(tmp_path)]) == 2
    assert "no job events" in capsys.readouterr().err
    write_events(tmp_path, [result("web1", "gather_facts")])
    assert run_events.main([str(tmp_path)]) == 0
    assert "fact gatherings per host: web1 1" in capsys.readouterr().out
