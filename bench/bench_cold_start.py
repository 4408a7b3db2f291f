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

Then, on the same (now warm) servers, new browser sessions, one after another, in two modes
taking turns (the bare app's sessions show what Streamlit's own page costs on this machine):

- fresh: a new browser context (nothing cached: Streamlit's ~3 MB of JavaScript fetched and
  compiled), as a browser that has never opened the app;
- tab: a new page (tab) in the one browser context that opened the app first (its static
  files, served as immutable, come from the browser's HTTP cache: a clinician opening the
  dashboard a second time, or in a second tab). The earlier tab is closed.

Each session is timed from ``page.goto`` to usable and to the differential; the client's CPU
seconds to usable (chromium, Playwright's driver and this script polling the page, from /proc:
less at the mercy of the other jobs on a shared machine than wall time) and how many of the page's static files came from the cache
(Resource Timing: a same-origin file with transferSize 0) are reported too, so that the tab
mode can be seen to be served from the cache.

Prints the medians and the ratio of the medians; exits 1 if a target is missed: the cold start
<= 1.3 x the bare app, and a new session on a warm server <= 1 s to usable, judged on the
fresh-context session, the issue's "new browser session" taken literally (a first visit, or a
browser whose cache was cleared, gets nothing from the cache); the tab figure is printed beside
it with its own verdict, for information only.

Each cold start waits first until the machine is quiet (under a quarter of its cores busy for
half a second, at most 15 s): what the previous round left running, such as the browser closing
its pages, does not fall on the next app's start.

``--before DIR`` also serves an earlier checkout (``git archive COMMIT | tar -x -C DIR``; the
same default model) in every round, in the same alternating order, so that before and after
meet the same load on a shared machine.

    python bench/bench_cold_start.py [--rounds 5] [--sessions 5] [--model DIR] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from _processes import clients_cpu, package_view, serve, settle  # noqa: E402
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


# The page's static files (Resource Timing): how many, how many from the cache (a same-origin
# file read from the HTTP cache has transferSize 0), bytes over the network.
STATIC_FILES = """() => { const files = performance.getEntriesByType('resource').filter(e => e.name.includes('/static/'));
  return [files.length, files.filter(e => e.transferSize === 0).length, files.reduce((n, e) => n + e.transferSize, 0)]; }"""


def open_page(browser, url: str, start: float, usable, differential=None, context=None,
              skip: frozenset = frozenset()) -> dict:
    """Seconds from ``start`` until ``usable(page)`` is enabled, then until ``differential(page)``
    is visible; the browser's CPU seconds until usable (the processes of this benchmark but the
    servers in ``skip``); the page's static files (count, from the cache, bytes fetched).

    A page of a new browser context, closed afterwards; or a new page of ``context``, whose
    cache the page shares, closed afterwards (the context stays open)."""
    own = context is None
    context = browser.new_context(viewport={"width": 1400, "height": 1000}) if own else context
    try:
        page = context.new_page()
        cpu = clients_cpu(skip)
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        expect(usable(page)).to_be_enabled(timeout=TIMEOUT_MS)
        seen = {"usable": time.perf_counter() - start, "cpu": clients_cpu(skip) - cpu}
        if differential is not None:
            differential(page).wait_for(state="visible", timeout=TIMEOUT_MS)
            seen["differential"] = time.perf_counter() - start
        seen["files"] = page.evaluate(STATIC_FILES)
        page.close()
        return seen
    finally:
        if own:
            context.close()


MODES = ("fresh", "tab")


def cold(browser, script: str, model: str, usable, differential=None, warm: int = 0,
         view: Path | None = None) -> dict[str, list]:
    """One server started cold (from the package ``view`` of an earlier checkout if given): its
    first page (in a new browser context, kept for the tab mode), then ``warm`` new sessions of
    each mode on it, the modes taking turns."""
    times: dict[str, list] = {"usable": [], "differential": []}
    times.update({f"{mode} {key}": [] for mode in MODES for key in ("usable", "differential", "cpu", "files")})
    where = {} if view is None else {"cwd": view}
    env = {} if view is None else {"PYTHONPATH": str(view)}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    settle()  # each cold start begins on a machine the previous one has left quiet
    start = time.perf_counter()
    try:
        with serve(model, env, script=script, poll=0.02, **where) as (url, pid, _log):
            first = open_page(browser, url, start, usable, differential, context)
            times["usable"].append(first["usable"])
            if "differential" in first:
                times["differential"].append(first["differential"])
            for i in range(warm):
                for mode in MODES if i % 2 == 0 else MODES[::-1]:
                    time.sleep(0.5)  # the previous session's run ends (the atypical check) before the next one opens
                    seen = open_page(browser, url, time.perf_counter(), usable, differential,
                                     context if mode == "tab" else None, frozenset({pid}))
                    for key, value in seen.items():
                        times[f"{mode} {key}"].append(value)
    finally:
        context.close()
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
                      + "; new sessions usable, " + "; ".join(f"{mode}: {fmt(times[f'{mode} usable'])} s" for mode in MODES)
                      + f" (load {os.getloadavg()[0]:.2f})", flush=True)
        browser.close()
    sys.exit(0 if report(results, [n for n, _ in runs if n != "bare"], args.rounds) else 1)


def report(results: dict[str, dict[str, list]], names: list[str], rounds: int) -> bool:
    """Print the medians; True if the targets are met (the new session judged on the fresh
    context: see the module's docstring)."""
    med = {name: {key: statistics.median(values) for key, values in times.items() if values and key[-5:] != "files"}
           for name, times in results.items()}
    bare = med["bare"]["usable"]
    print(f"\ncold start, median of {rounds} (seconds from `streamlit run` to the page), load now "
          f"{machine().rsplit(' ', 1)[1]}:")
    print(f"  bare one-selectbox app, selectbox usable: {bare:.2f} s  (all: {fmt(results['bare']['usable'])})")
    ok = True
    for name in names:
        times, ratio = results[name], med[name]["usable"] / bare
        print(f"  {name}, first finding usable:  {med[name]['usable']:.2f} s  (all: {fmt(times['usable'])})")
        print(f"  {name}, differential shown:    {med[name]['differential']:.2f} s  (all: {fmt(times['differential'])})")
        print(f"  {name}, ratio usable / bare app: {ratio:.2f}  (target <= {RATIO_TARGET})")
        if name == "dashboard":
            ok = ratio <= RATIO_TARGET and med[name]["fresh usable"] <= WARM_TARGET_S
    for mode, what in (("fresh", "a new browser context, nothing cached; the target is judged on this one"),
                       ("tab", "a new tab of a browser that has opened the app: static files from its cache; "
                               "for information")):
        print(f"new session on the warm server, {mode} ({what}), median of {len(results['bare'][f'{mode} usable'])}:")
        for name in ["bare", *names]:
            times, m = results[name], med[name]
            files = times[f"{mode} files"]
            cached = f"static files from the cache {sum(f[1] for f in files)}/{sum(f[0] for f in files)}, " \
                     f"{sum(f[2] for f in files) / len(files) / 1e6:.2f} MB fetched per session"
            shown = f"; differential shown {m[f'{mode} differential']:.2f} s" if f"{mode} differential" in m else ""
            verdict = "" if name == "bare" else (f" (x{m[f'{mode} usable'] / med['bare'][f'{mode} usable']:.2f} the bare "
                                                 f"app; target <= {WARM_TARGET_S:.0f} s: "
                                                 f"{'met' if m[f'{mode} usable'] <= WARM_TARGET_S else 'missed'})")
            print(f"  {name}: usable {m[f'{mode} usable']:.2f} s{verdict}{shown}; client CPU to usable "
                  f"{m[f'{mode} cpu']:.2f} s; {cached}  (usable, all: {fmt(times[f'{mode} usable'])})")
    print("targets (cold start ratio; new session in a fresh context): " + ("met" if ok else "MISSED"))
    return ok


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
