"""crampdx dashboard: enter findings, see the ranked causes of leg cramps and why.

Run with ``streamlit run app.py``. The entry script only frames the pages; the pages and
their logic live in the package (``crampdx.dashboard``). Decision support for clinicians,
trained on synthetic cases; not validated on patients.
"""

from pathlib import Path

import streamlit as st

import crampdx.dashboard.pages
from crampdx import DISCLAIMER
from crampdx.dashboard.state import keep_entries

PAGES = Path(crampdx.dashboard.pages.__file__).parent


def main() -> None:
    st.set_page_config(page_title="crampdx — leg cramps differential", layout="wide")
    keep_entries()
    page = st.navigation([
        st.Page(PAGES / "differential.py", title="Differential", icon=":material/stethoscope:", default=True),
        st.Page(PAGES / "about.py", title="About this model", icon=":material/info:"),
        st.Page(PAGES / "knowledge.py", title="Knowledge browser", icon=":material/menu_book:"),
    ])
    st.title("crampdx — differential diagnosis of leg cramps")
    st.warning(f"**{DISCLAIMER}**", icon=":material/info:")
    with st.sidebar:
        st.caption(DISCLAIMER)
    page.run()


main()
