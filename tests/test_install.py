"""vidpipe as users install it: a plain (not editable) `pip install` into a new venv puts only
`vidpipe` at the top level, runs from any folder with its package data, and takes plug-ins
(examples/plugin: an output, a sender and a backend) through entry points, used from the CLI.

The new venv borrows the development venv's dependencies through a .pth line (nothing is
downloaded); vidpipe itself and the plug-in are installed into it from wheels built here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.media import write_video
from tests.stages.jobs.test_label_job import photo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(project: Path, into: Path) -> Path:
    """The project's wheel, built with this venv's setuptools (nothing downloaded)."""
    into.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(into), str(project)], check=True, timeout=300, cwd=into)
    (wheel,) = into.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("wheels")
    vidpipe = build_wheel(ROOT, d / "vidpipe")
    source = shutil.copytree(ROOT / "examples" / "plugin", d / "plugin-source")  # its build/ stays out of the tree
    plugin = build_wheel(source, d / "plugin")
    return {"vidpipe": vidpipe, "plugin": plugin}


@pytest.fixture(scope="module")
def venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with vidpipe (and the example plug-in) installed from their wheels."""
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(root)], check=True,
                   timeout=120)
    site = next(root.glob("lib/python*/site-packages"))
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # numpy, cv2, pynq...
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(wheels["vidpipe"]), str(wheels["plugin"])], check=True, timeout=300)
    return root


def test_the_wheel_installs_only_vidpipe_at_the_top_level(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["vidpipe"]) as wheel:
        names = wheel.namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vidpipe"}
    for data in ("vidpipe/hw/imagenet_classes.txt", "vidpipe/py.typed", "vidpipe/configs/label-videos.yaml",
                 "vidpipe/pipeline/supervisor.py", "vidpipe/stages/jobs/cli.py"):
        assert data in names


def test_the_installed_cli_labels_from_an_unrelated_folder(venv: Path, tmp_path: Path) -> None:
    write_video(tmp_path / "cat.mp4", frames=12, width=160, height=120, photo=photo("chelsea"))
    run = subprocess.run([str(venv / "bin" / "vidpipe"), "label", "cat.mp4", "--out", "out", "--no-progress"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "cat.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["names"][0] in ("tiger cat", "Egyptian cat", "tabby")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import vidpipe, sys; print(vidpipe.__file__); "
                            "import importlib.util as u; print(u.find_spec('pipeline'), u.find_spec('stages'))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    file, generic = where.stdout.splitlines()
    assert file.startswith(str(venv)) and generic == "None None"


def test_a_plugin_output_and_backend_are_used_from_the_cli(venv: Path, tmp_path: Path) -> None:
    write_video(tmp_path / "cat.mp4", frames=10, width=160, height=120, photo=photo("chelsea"))
    cfg = tmp_path / "job.yaml"
    cfg.write_text("backend:\n  name: mean-color\n  options:\n    sharpness: 4\noutput:\n  extra: [frames-csv]\n")
    run = subprocess.run([str(venv / "bin" / "vidpipe"), "label", "cat.mp4", "--out", "out", "--config", str(cfg),
                          "--no-progress", "--no-video"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "out" / "cat.frames.csv").read_text().splitlines()
    assert lines[0] == "frame,t,label,score" and len(lines) == 11
    assert {line.split(",")[2] for line in lines[1:]} <= {"black", "white", "red", "green", "blue", "yellow",
                                                          "magenta", "cyan", "gray"}
    manifest = json.loads((tmp_path / "out" / "vidpipe-manifest.json").read_text())
    (entry,) = manifest["videos"].values()
    assert "cat.frames.csv" in entry["outputs"]  # recorded: --resume checks it like vidpipe's own
    devices = subprocess.run([str(venv / "bin" / "vidpipe"), "devices"], capture_output=True, text=True, timeout=120)
    assert "mean-color" in devices.stdout
    bad = cfg.read_text().replace("frames-csv", "frames-xls")
    cfg.write_text(bad)
    run = subprocess.run([str(venv / "bin" / "vidpipe"), "label", "cat.mp4", "--out", "out2", "--config", str(cfg)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "unknown output 'frames-xls'" in run.stderr and "frames-csv" in run.stderr
    assert not (tmp_path / "out2").exists()


def test_a_plugin_sender_gets_the_live_label_events(venv: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "cat.mp4", frames=30, width=160, height=120, fps=30, photo=photo("chelsea"))
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"live:\n  http: false\n  events:\n    extra:\n      sqlite: {{path: events.db}}\n"
                   f"  sources:\n    - uri: {video}\n      name: door\n")
    run = subprocess.run([str(venv / "bin" / "vidpipe"), "live", "--config", str(cfg), "--out", "out"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(tmp_path / "out" / "events.db") as db:
        rows = db.execute("SELECT stream, type, label FROM events").fetchall()
    assert rows and all(r[0] == "door" for r in rows) and rows[0][1] == "label"
