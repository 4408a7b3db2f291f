"""The dashboard server's own work per rerun (issue 13, item 8): the options that halved it.

bench/bench_dashboard_load.py measured the server's CPU per rerun at about 250 ms with
Streamlit's defaults and about 125 ms without a forced full garbage collection after every
run (about 100 ms with the model loaded, holding the GIL) and without the per-session file
watcher. These tests keep both options in the shipped config, spelled so that Streamlit reads
them (an unknown key would only be warned about).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEED_OPTIONS = {"runner.postScriptGC": False, "server.fileWatcherType": "none"}


def test_the_shipped_config_sets_the_options_that_keep_a_rerun_cheap():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    for name, value in SPEED_OPTIONS.items():
        section, key = name.split(".")
        assert config[section][key] == value, name


def test_streamlit_run_from_the_repository_reads_them():
    """`streamlit run app.py` reads the config of the working directory: ask Streamlit itself."""
    script = ("from streamlit import config; "
              f"print(repr([config.get_option(name) for name in {list(SPEED_OPTIONS)!r}]))")
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREAMLIT_")}
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    assert answer.stdout.strip().splitlines()[-1] == repr(list(SPEED_OPTIONS.values()))
