"""crampdx dashboard (placeholder until the dashboard issue): the knowledge base at a glance.

Run with ``streamlit run app.py``. All logic lives in the packages; this script only shows.
"""

import pandas as pd
import streamlit as st

from training.cli import DISCLAIMER, knowledge_summary


@st.cache_resource
def load_summary() -> dict:
    return knowledge_summary()


def main() -> None:
    st.set_page_config(page_title="crampdx — leg cramps differential", layout="wide")
    st.title("crampdx — differential diagnosis of leg cramps")
    st.warning(DISCLAIMER)
    summary = load_summary()
    st.subheader(f"Knowledge base: {len(summary['classes'])} etiology classes")
    table = pd.DataFrame(summary["classes"])[["name", "icd10", "prior", "summary", "prior_src"]]
    st.dataframe(table, hide_index=True, use_container_width=True)
    st.caption("The ranked differential with explanations arrives with the trained model.")


main()
