"""The command line itself: --version, help for every flag, each subcommand's own flags, -v/-q anywhere."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from vidpipe.stages.config import load_job
from vidpipe.stages.jobs.cli import build_parser, log_level, main, make_job


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("vidpipe 0.")


def test_every_flag_and_argument_says_what_it_does() -> None:
    parser = build_parser()
    for name, p in {"vidpipe": parser, **subparsers(parser)}.items():
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if action.option_strings == ["--start-method"]:  # an internal, for tests: hidden from --help
                assert action.help == argparse.SUPPRESS
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"


def test_each_subcommand_offers_only_the_flags_that_apply() -> None:
    sub = subparsers(build_parser())
    live, label, run, watch = sub["live"], sub["label"], sub["run"], sub["watch"]
    assert {"--loop", "--record", "--name", "--no-http", "--port", "--host", "--display", "--serve"} <= flags(live)
    assert not {"--resume", "--no-video", "--no-progress"} & flags(live)
    assert {"--resume", "--no-video", "--no-progress"} <= flags(label)
    assert not {"--loop", "--record", "--name", "--no-http", "--port", "--display", "--serve"} & flags(label)
    assert {"--resume", "--port", "--record"} <= flags(run) and not {"--loop", "--name", "--config"} & flags(run)
    assert "--resume" not in flags(watch) and "--port" not in flags(watch)
    port = next(a for a in live._actions if "--port" in a.option_strings)
    assert port.help is not None and "0 = any free port" in port.help  # live.http_port's meaning
    for p in sub.values():
        assert {"-v", "-q"} <= flags(p)


@pytest.mark.parametrize(("argv", "level"), [
    (["label", "x.mp4"], logging.INFO),
    (["-v", "label", "x.mp4"], logging.DEBUG),
    (["label", "x.mp4", "-v"], logging.DEBUG),
    (["-q", "label", "x.mp4"], logging.WARNING),
    (["label", "-q", "x.mp4"], logging.WARNING),
    (["-q", "devices", "-q"], logging.ERROR),
    (["-v", "live", "0", "-q"], logging.INFO),
])
def test_v_and_q_are_accepted_before_and_after_the_subcommand(argv: list[str], level: int) -> None:
    assert log_level(build_parser().parse_args(argv)) == level


def test_names_and_loop_apply_to_the_live_sources() -> None:
    args = build_parser().parse_args(["live", "a.mp4", "0", "--name", "lobby", "--loop", "--no-http", "--record"])
    job = make_job(args)
    assert [(s.uri, s.name, s.loop) for s in job.live.sources] == [("a.mp4", "lobby", True), ("0", "", True)]
    assert job.live.http is False and job.live.record is True and job.live.serve is False
    assert make_job(build_parser().parse_args(["live", "--serve"])).live.serve is True  # no source: a service


def test_flags_that_do_not_apply_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "0", "--name", "a", "--name", "b"]) == 2
    assert "--name given 2 times for 1 live source(s)" in capsys.readouterr().err
    label_cfg, live_cfg = tmp_path / "label.yaml", tmp_path / "live.yaml"
    label_cfg.write_text("job: label\ninputs: [x.mp4]\n")
    live_cfg.write_text("job: live\nlive:\n  sources:\n    - uri: '0'\n")
    assert main(["run", str(label_cfg), "--port", "0"]) == 2
    assert f"--port does not apply to a label job ({label_cfg})" in capsys.readouterr().err
    assert main(["run", str(live_cfg), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"--resume does not apply to a live job ({live_cfg})" in err and "Traceback" not in err


def test_a_mistyped_flag_gets_the_commands_usage_and_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["label", "vids/", "--out", "o", "--bacth", "8"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("usage: vidpipe label ")
    assert err.strip().splitlines()[-1] == ("vidpipe label: error: unrecognized arguments: --bacth 8 "
                                            "(did you mean --batch?)")


def test_short_flags_and_help_with_examples_and_no_internals(capsys: pytest.CaptureFixture[str]) -> None:
    args, extra = build_parser().parse_known_args(["label", "a.mp4", "-o", "out", "-b", "sim", "-c", "job.yaml"])
    assert not extra and (args.out, args.backend, str(args.config_file)) == ("out", "sim", "job.yaml")
    for command in ("label", "live", "watch", "run", "init"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and "--start-method" not in text, command
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "By default the cpu backend runs a real ImageNet-1k classifier" in capsys.readouterr().out


def test_devices_as_json_and_init_never_writes_over_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["backend"] for r in rows][:2] == ["cpu", "sim"]
    assert all(set(r) == {"backend", "name", "state"} for r in rows)
    path = tmp_path / "cam.yaml"
    assert main(["init", "live", str(path)]) == 0
    assert load_job(path).job == "live" and "# Camera index" in path.read_text()
    path.write_text("mine")
    assert main(["init", "live", str(path)]) == 2 and path.read_text() == "mine"
    assert "exists already: not writing over it" in capsys.readouterr().err
