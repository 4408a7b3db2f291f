"""Benchmark the dashboard's cold start against a bare Streamlit app, and a new session on a
warm server (issue 12, item 3).

Each round starts the real `streamlit run app.py` (headless, a free localhost port, the
repository's config, the default model) and right after it a bare app holding one selectbox,
started the same way; the order alternates from round to round. A headless chromium
(Debian's, driven by Playwright as tests/test_e2e.py does; launched once, before the
rounds) opens the page as soon as the server answers its health check. Measured from the
moment the server process is started:

- usable: the first finding's input ("Timing of the cramps") is on the page and enabled (for
  the bare app: its selectbox);
- differential: the ranked causes are shown (the "Explain a cause" chooser).

Then, on the same (now warm) servers, new browser sessions, one after another (each a new
browser context: nothing cached), from ``page.goto`` to usable and to the differential; the
bare app's new sessions show what Streamlit's own page costs on this machine. Prints the
medians and the ratio of the medians; exits 1 if a target is missed (cold start <= 1.3 x the
bare app, a new session on a warm server <= 1 s to usable).

``--before DIR`` also serves an earlier checkout (``git archive COMMIT | tar -x -C DIR``; the
same default model) in every round, in the same alternating order, so that before and after
meet the same load on a shared machine.

    python bench/bench_cold_start.py [--rounds 5] [--sessions 5] [--model DIR] [--before DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from _processes import package_view, serve  # noqa: E402
from _timing import machine  # noqa: E402
from crampdx.contract import load_schema  # noqa: E402
from crampdx.model.artifact import default_artifact_dir  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 180_000
BARE_LABEL = "Pick one"
BARE_APP = f'import streamlit as st\n\nst.selectbox("{BARE_LABEL}", ["first", "second"])\n'
RATIO_TARGET = 1.3
WARM_TARGET_S = 1.0
ROLES = {"categorical": "combobox", "binary": "radiogroup"}


def first_finding():
    """(role, label) of the findings form's first input, as the browser exposes it."""
    schema = load_schema()
    finding = schema.in_section(next(iter(schema.sections)))[0]
    if finding.is_numeric:
        raise SystemExit(f"the first finding {finding.id} is a measurement; teach the benchmark its label")
    return ROLES.get(finding.kind, "combobox"), finding.label


def open_page(browser, url: str, start: float, usable, differential=None) -> tuple[float, float | None]:
    """Seconds from ``start`` until ``usable(page)`` is enabled, then until ``differential(page)``
    is visible; the browser context is closed afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        expect(usable(page)).to_be_enabled(timeout=TIMEOUT_MS)
        to_usable = time.perf_counter() - start
        if differential is None:
            return to_usable, None
        differential(page).wait_for(state="visible", timeout=TIMEOUT_MS)
        return to_usable, time.perf_counter() - start
    finally:
        context.close()


def cold(browser, script: str, model: str, usable, differential=None, warm: int = 0,
         view: Path | None = None) -> dict[str, list[float]]:
    """One server started cold (from the package ``view`` of an earlier checkout if given): its
    first page, then ``warm`` new sessions on it."""
    times: dict[str, list[float]] = {"usable": [], "differential": [], "warm usable": [], "warm differential": []}
    where = {} if view is None else {"cwd": view}
    env = {} if view is None else {"PYTHONPATH": str(view)}
    start = time.perf_counter()
    with serve(model, env, script=script, poll=0.02, **where) as (url, _pid, _log):
        first, shown = open_page(browser, url, start, usable, differential)
        times["usable"].append(first)
        if shown is not None:
            times["differential"].append(shown)
        for _ in range(warm):
            time.sleep(0.5)  # the previous session's run ends (the atypical check) before the next one opens
            first, shown = open_page(browser, url, time.perf_counter(), usable, differential)
            times["warm usable"].append(first)
            if shown is not None:
                times["warm differential"].append(shown)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold starts of each app (medians reported)")
    parser.add_argument("--sessions", type=int, default=5, help="new sessions on each warm server per round")
    parser.add_argument("--model", default=str(default_artifact_dir()), help="the model directory (default: %(default)s)")
    parser.add_argument("--before", type=Path, help="an earlier checkout to serve and measure alongside")
    args = parser.parse_args()
    if not (Path(args.model) / "manifest.json").is_file():
        raise SystemExit(f"no model at {args.model}: train the default one with `crampdx train` first")
    print(f"machine: {machine()}")
    print(f"model: {args.model}")
    role, label = first_finding()
    finding = lambda page: page.get_by_role(role, name=label, exact=True)  # noqa: E731
    chooser = lambda page: page.get_by_role("combobox", name="Explain a cause", exact=True)  # noqa: E731
    bare_box = lambda page: page.get_by_role("combobox", name=BARE_LABEL, exact=True)  # noqa: E731
    view = package_view(args.before.resolve()) if args.before else None
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="crampdx-bare-app-") as folder, sync_playwright() as playwright:
        bare_app = Path(folder) / "bare_app.py"
        bare_app.write_text(BARE_APP, encoding="utf-8")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        runs = [("dashboard", lambda: cold(browser, "app.py", args.model, finding, chooser, args.sessions)),
                ("bare", lambda: cold(browser, str(bare_app), args.model, bare_box, warm=args.sessions))]
        if view is not None:
            runs.insert(1, ("before", lambda: cold(browser, "app.py", args.model, finding, chooser, args.sessions, view)))
        for round_ in range(args.rounds):
            for name, run in runs if round_ % 2 == 0 else runs[::-1]:
                times = run()
                for key, values in times.items():
                    results.setdefault(name, {}).setdefault(key, []).extend(values)
                print(f"round {round_ + 1} {name}: usable {times['usable'][0]:.2f} s"
                      + (f", differential {times['differential'][0]:.2f} s" if times["differential"] else "")
                      + f"; new sessions usable {fmt(times['warm usable'])} s", flush=True)
        browser.close()
    bare = statistics.median(results["bare"]["usable"])
    print(f"\ncold start, median of {args.rounds} (seconds from `streamlit run` to the page), load now "
          f"{machine().rsplit(' ', 1)[1]}:")
    print(f"  bare one-selectbox app, selectbox usable: {bare:.2f} s  (all: {fmt(results['bare']['usable'])})")
    ok = True
    for name in [n for n, _ in runs if n != "bare"]:
        times = results[name]
        med = {key: statistics.median(values) for key, values in times.items() if values}
        ratio = med["usable"] / bare
        print(f"  {name}, first finding usable:  {med['usable']:.2f} s  (all: {fmt(times['usable'])})")
        print(f"  {name}, differential shown:    {med['differential']:.2f} s  (all: {fmt(times['differential'])})")
        print(f"  {name}, ratio usable / bare app: {ratio:.2f}  (target <= {RATIO_TARGET})")
        if name == "dashboard":
            ok = ratio <= RATIO_TARGET and med["warm usable"] <= WARM_TARGET_S
    print(f"new session on the warm server (a new browser context), median of {len(results['bare']['warm usable'])}:")
    print(f"  bare app, selectbox usable: {statistics.median(results['bare']['warm usable']):.2f} s"
          f"  (all: {fmt(results['bare']['warm usable'])})")
    for name in [n for n, _ in runs if n != "bare"]:
        times = results[name]
        print(f"  {name}, first finding usable: {statistics.median(times['warm usable']):.2f} s (target <= "
              f"{WARM_TARGET_S:.0f} s); differential shown: {statistics.median(times['warm differential']):.2f} s"
              f"  (usable, all: {fmt(times['warm usable'])})")
    print("targets: " + ("met" if ok else "MISSED"))
    sys.exit(0 if ok else 1)


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
