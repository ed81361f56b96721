"""Run every tutorial of the documentation gallery, as a reader would.

Each tutorial runs in a fresh Python process (so that one tutorial's state
cannot help another) with a non-interactive matplotlib backend, from an empty
working folder. By default the offline path is tested (no ``MNE_EEGFM_DATA``);
the tutorials that can use the real data are run once more on it where it is
present.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("plot_*.py"))
USES_DATA = ("plot_02_any_montage.py", "plot_03_bids_workflow.py")


def _run(script, cwd, data_root=None):
    env = {k: v for k, v in os.environ.items() if k != "MNE_EEGFM_DATA"}
    env["MPLBACKEND"] = "Agg"
    if data_root is not None:
        env["MNE_EEGFM_DATA"] = str(data_root)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return proc.stdout


def test_every_tutorial_is_collected():
    assert len(SCRIPTS) >= 7
    for script in SCRIPTS:
        text = script.read_text(encoding="utf-8")
        assert text.startswith('"""'), f"{script.name} needs a gallery docstring"
        assert "\n====" in text.split('"""')[1], f"{script.name} needs a title"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs_offline(script, tmp_path):
    _run(script, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", USES_DATA)
def test_tutorial_runs_on_real_data(name, tmp_path, data_path):
    out = _run(TUTORIALS / name, tmp_path, data_root=data_path)
    if name == "plot_03_bids_workflow.py":
        assert "guinea-bissau-bids" in out
    else:
        assert "EEGBCI" in out
