"""scripts/bench without a lab: its options (bad ones exit 2 naming the option and the
value) and the table it prints from a report."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("hostops_bench", str(SCRIPT))
    spec = importlib.util.spec_from_loader("hostops_bench", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


bench = load()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--runs", "0"], "argument --runs: '0' is not a whole number from 1 to 20"),
        (["--runs", "three"], "argument --runs: 'three' is not a whole number from 1 to 20"),
        (["--tasks", "1"], "argument --tasks: '1' is not a whole number from 2 to 1000"),
        (["--strategy", "fast"], "argument --strategy: invalid choice: 'fast'"),
        (["--json", "report.txt"], "argument --json: 'report.txt' does not end in .json"),
        (["--json", "/nonexistent/r.json"], "'/nonexistent/r.json': its directory does not"),
    ],
)
def test_bad_options_exit_2_naming_option_and_value(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench.main(args)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err


def test_good_options_parse(tmp_path: Path) -> None:
    # the control: the same options with good values
    args = bench.build_parser().parse_args(
        ["--runs", "3", "--tasks", "20", "--strategy", "linear", "--json", str(tmp_path / "r.json")]
    )
    assert (args.runs, args.tasks, args.strategy) == (3, 20, "linear")
    assert bench.build_parser().parse_args([]).strategy == "both"


def test_medians_and_the_table_side_by_side() -> None:
    samples = {
        "mitogen": [{"reapply_s": 20.0, "noop_task_ms": 30.0}, {"reapply_s": 24.0}],
        "linear": [{"reapply_s": 50.0, "noop_task_ms": 200.0}, {"reapply_s": 60.0}],
    }
    report = {
        "runs": 2,
        "machine": {
            "cores": 2,
            "memory_gib": 23.4,
            "load_before": [0.5, 0, 0],
            "load_after": [1.5, 0, 0],
            "ansible-core": "2.19.4",
            "mitogen": "0.3.54",
        },
        "medians": {s: bench.medians(v) for s, v in samples.items()},
    }
    medians = report["medians"]
    assert isinstance(medians, dict)
    assert medians["mitogen"] == {"noop_task_ms": 30.0, "reapply_s": 22.0}
    lines = bench.table(report).splitlines()
    assert lines[0].split() == ["figure", "mitogen", "linear", "linear/mitogen"]
    assert lines[2].split() == ["idempotent", "re-apply", "22.0", "s", "55.0", "s", "2.50"]
    assert lines[3].split() == ["marginal", "no-op", "task", "30", "ms", "200", "ms", "6.67"]
    assert len(lines) == 5  # figures nobody measured are left out
    assert "medians of 2 run(s); 2 cores, 23.4 GiB, load 0.50 before, 1.50 after" in lines[4]


def test_a_patch_run_counts_the_task_results_of_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """patch_run reads the run's directory from 'patch run's last line and counts the task
    results of that run's events (skipped tasks have none), not another run's."""
    run_dir = tmp_path / "patch-runs" / "20261205T180407684547Z-run"
    events = run_dir / "ansible" / "artifacts" / "x" / "job_events"
    events.mkdir(parents=True)
    other = tmp_path / "patch-runs" / "20261205T170000000000Z-run" / "job_events"
    other.mkdir(parents=True)
    kinds = ["runner_on_ok", "runner_on_ok", "runner_on_skipped", "runner_on_failed"]
    for n, kind in enumerate(kinds, 1):
        data = {"host": "h", "task": f"t{n}", "task_action": "ansible.builtin.command"}
        (events / f"{n}-{kind}.json").write_text(json.dumps({"event": kind, "event_data": data}))
    (other / "1-x.json").write_text(json.dumps({"event": "runner_on_ok", "event_data": {}}))
    calls: list[tuple[str, ...]] = []

    def hostops(*args: str, env: dict[str, str] | None = None) -> float:
        calls.append(args)
        said = f"h applied: nothing\npatch run done: 0 change(s); reports: {run_dir}/reports\n"
        monkeypatch.setattr(bench.run, "last_stdout", said, raising=False)
        return 4.5

    monkeypatch.setattr(bench, "hostops", hostops)
    assert bench.patch_run({}, 2) == (4.5, 3)
    assert calls == [
        ("patch", "run", "--lab", "--host", "bench-scale-1", "--host", "bench-scale-2",
         "--serial", "100%", "--at", bench.PATCH_AT)
    ]  # fmt: skip
    refused = "patch run refused: outside the window\n"
    monkeypatch.setattr(bench.run, "last_stdout", refused, raising=False)
    monkeypatch.setattr(bench, "hostops", lambda *a, env=None: 1.0)
    with pytest.raises(bench.BenchError, match="no reports directory"):
        bench.patch_run({}, 1)


def test_the_patch_floor_runs_the_apt_work_on_every_host_at_once_and_fails_loudly(
    tmp_path: Path,
) -> None:
    """patch_floor starts the apt work on each of the COUNT hosts at once (not one after the
    other) and times them all; a host whose command fails stops the benchmark, named."""
    marks = tmp_path / "marks"
    marks.mkdir()

    def ssh_command(host: str, command: list[str]) -> list[str]:
        assert command == [bench.PATCH_APT_WORK]
        # each host says it started, then waits until all four did (or gives up)
        script = (
            f"touch {marks}/{host}; for i in $(seq 100); do "
            f"[ $(ls {marks} | wc -l) -ge 4 ] && exit 0; sleep 0.05; done; exit 7"
        )
        return ["sh", "-c", script]

    took = bench.patch_floor(4, ssh_command)
    assert sorted(p.name for p in marks.iterdir()) == [f"bench-scale-{n}" for n in (1, 2, 3, 4)]
    assert 0 < took < 5

    def failing(host: str, command: list[str]) -> list[str]:
        code = 3 if host == "bench-scale-2" else 0
        return ["sh", "-c", f"echo apt said no on {host}; exit {code}"]

    with pytest.raises(
        bench.BenchError, match="bench-scale-2 exited 3:\napt said no on bench-scale-2"
    ):
        bench.patch_floor(2, failing)
