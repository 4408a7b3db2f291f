"""The two kinds of client bench/bench_dashboard_load.py drives the dashboard with.

Both do what a clinician does: load an example case, open the laboratory section, then type
one potassium value after another; both time an update from the moment it is sent to the
moment the server has finished the run it started, and both check the last page.

- :class:`BrowserSession`: a page in a context of a headless chromium (Playwright), over
  Streamlit's websocket, as a person's browser does. A run's end is the ``script_finished``
  message on the page's websocket, decoded with Streamlit's own protobuf.
- :class:`LightSession`: Streamlit's agent API (``POST /_stcore/agent/interact``, on only for
  the benchmark's server), which runs the same script for a session and answers with the page
  as JSON once the run has ended and everything it drew was sent: a client that costs the
  machine next to nothing, so that 20 sessions measure the server rather than 20 browsers.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

LABORATORY = "Laboratory"
POTASSIUM_KEY = "f:potassium"
POTASSIUM = re.compile(r"^Potassium \([^)]*\)$")  # the form's field, not its "ask next" twin
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
TIMEOUT = 180  # seconds for one run to finish, however loaded the machine is
AGENT = "/_stcore/agent/interact"


def expected_texts(value: str) -> list[str]:
    """What the page shows after an update: the parsed entry, the explanation, the next findings."""
    return [f"Read as: Potassium {float(value):.1f}", "Why this cause", "Ask or examine next"]


class BrowserSession:
    """One browser context on the dashboard; knows when the server finished each of its runs."""

    def __init__(self, context, page):
        self.context, self.page = context, page
        self.finished: asyncio.Queue = asyncio.Queue()
        self.latencies: list[float] = []
        self.problems: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    @classmethod
    async def start(cls, browser) -> BrowserSession:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT * 1000)
        return cls(context, await context.new_page())

    def _frame(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)) and len(payload) < 512:  # script_finished is small
            message = ForwardMsg.FromString(bytes(payload))
            if message.WhichOneof("type") == "script_finished":
                self.finished.put_nowait((time.perf_counter(), message.script_finished))

    async def run_done(self) -> float:
        """When the next run of this session finished (a run cut short by a newer one is skipped)."""
        while True:
            at, status = await asyncio.wait_for(self.finished.get(), TIMEOUT)
            if status in DONE:
                return at
            if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                raise RuntimeError("the app did not compile")

    async def act(self, action) -> float:
        while not self.finished.empty():
            self.finished.get_nowait()
        start = time.perf_counter()
        await action
        return await self.run_done() - start

    async def open(self, url: str, example_name: str) -> None:
        await self.page.goto(url)
        await self.run_done()
        chooser = self.page.get_by_role("combobox", name="Load an example case")
        await chooser.wait_for()
        await asyncio.sleep(1)  # a second run on first load, if any, ends meanwhile
        await chooser.click()
        await self.act(self.page.get_by_role("option", name=example_name, exact=True).click())
        await self.act(self.page.get_by_role("tab", name=LABORATORY).click())

    async def update(self, value: str) -> None:
        field = self.page.get_by_label(POTASSIUM)
        await field.fill(value)
        self.latencies.append(await self.act(field.press("Enter")))

    async def check(self, value: str) -> None:
        """The page after the last update shows all of the assessment, no error, no pending check."""
        page = self.page
        for text in expected_texts(value):
            if await page.get_by_text(text, exact=False).count() == 0:
                self.problems.append(f"missing {text!r}")
        chooser = await page.get_by_role("combobox", name="Explain a cause").input_value()
        if not chooser.startswith("1. "):
            self.problems.append(f"cause chooser shows {chooser!r}")
        if await page.locator('[data-testid="stVegaLiteChart"]').count() < 2:
            self.problems.append("ranking or explanation chart missing")
        if await page.get_by_text("Checking how typical", exact=False).count():
            self.problems.append("atypical check still pending after the run")
        if await page.locator('[data-testid="stException"]').count():
            self.problems.append("an exception is shown")

    async def close(self) -> None:
        await self.context.close()


class LightSession:
    """One session through the agent API: an HTTP request per update, answered when its run ended."""

    def __init__(self, client):
        self.client, self.id, self.page = client, None, {}
        self.latencies: list[float] = []
        self.problems: list[str] = []

    @classmethod
    async def start(cls, client) -> LightSession:
        return cls(client)

    async def interact(self, widgets: dict | None = None) -> float:
        body = {} if self.id is None else {"session_id": self.id, "widget_state": widgets}
        start = time.perf_counter()
        response = await self.client.post(AGENT, json=body, timeout=TIMEOUT)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"the agent API answered {response.status_code}: {response.text[:300]}")
        self.page = response.json()
        self.id = self.page["session_id"]
        return elapsed

    async def open(self, url: str, example_name: str) -> None:
        await self.interact()
        await self.interact({"example": example_name})
        await self.interact({"section": LABORATORY})

    async def update(self, value: str) -> None:
        self.latencies.append(await self.interact({POTASSIUM_KEY: value}))

    async def check(self, value: str) -> None:
        shown = json.dumps(self.page["tree"], ensure_ascii=False)
        for text in expected_texts(value):
            if text not in shown:
                self.problems.append(f"missing {text!r}")
        if self.page.get("status") != "ready":
            self.problems.append(f"status {self.page.get('status')!r}")
        if shown.count('"type": "vega_lite_chart"') < 2:
            self.problems.append("ranking or explanation chart missing")
        if "Checking how typical" in shown:
            self.problems.append("atypical check still pending after the run")
        if '"type": "exception"' in shown:
            self.problems.append("an exception is shown")

    async def close(self) -> None:
        pass
