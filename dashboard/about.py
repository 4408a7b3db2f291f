"""The "about this model" page: the model card, the model against the exact posterior,
calibration and confusion matrix; and the knowledge browser page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from crampdx.dashboard import resources
from crampdx.model import Diagnoser
from crampdx.render.evaluation import AGREEMENT_METRICS, model_versus_posterior
from crampdx.synthetic.summary import cited_references, key_findings

__all__ = ["about_page", "knowledge_page"]

HOW_IT_IS_USED = (
    "#### How the dashboard uses the model\n"
    "- Red flags are rules taken from the article's clinical pitfalls, independent of the model (only the "
    "quinine warning also looks at whether idiopathic cramps rank among the top three).\n"
    "- *Ask or examine next* weighs each possible answer by its probability under the model's differential and "
    "the knowledge base.\n"
    "- The atypical-case warning compares the entered findings with synthetic cases that have the "
    "same findings assessed.\n"
    "- Nothing entered is sent anywhere; models are loaded only from this tool's own verified artifacts.")


def about_page(diagnoser: Diagnoser) -> None:
    st.header("About this model")
    card, plots = st.tabs(["Model card", "Evaluation"])
    path = Path(diagnoser.path_)
    with card:
        card_file = path / "model_card.md"
        st.markdown(card_file.read_text(encoding="utf-8") if card_file.is_file() else "*The model card is missing from the artifact.*")
        st.markdown(HOW_IT_IS_USED)
    with plots:
        table = model_versus_posterior(diagnoser.manifest_)
        st.markdown("**The model against the exact posterior** of the knowledge base (the ceiling on these cases)")
        if table is not None:
            n = (diagnoser.manifest_.get("metrics") or {}).get("n")
            st.dataframe(table, hide_index=True, column_config={
                "model": st.column_config.NumberColumn(format="%.4f"),
                "exact posterior": st.column_config.NumberColumn(format="%.4f")})
            posterior = diagnoser.manifest_["metrics"]["posterior"]
            st.markdown("".join(f"\n- {name}: {fmt.format(posterior[k])}" for name, k, fmt in AGREEMENT_METRICS if k in posterior))
            st.caption(f"On {n:,} fresh synthetic cases. The exact posterior is the best any model can do on these "
                       "cases; it says how well the model learned the knowledge base, not how it does on patients."
                       if n else "On fresh synthetic cases.")
        else:
            st.caption("See the Evaluation section of the model card.")
        for name, caption in (("calibration.png", "Calibration of the top-ranked cause"),
                              ("confusion_matrix.png", "Confusion matrix, row-normalised (synthetic cases)")):
            if (path / name).is_file():
                st.image(str(path / name), caption=caption)


def knowledge_page() -> None:
    kb = resources.knowledge()
    st.header("Knowledge browser")
    st.caption(f"{kb.title}: {len(kb.classes)} etiology classes from `{kb.source}` (sha256 {kb.sha256[:12]}). "
               "Every number carries its source: `seed:N` is reference N of the review article, "
               "`assumption:` a labelled assumption.")
    names = {c.id: f"{c.name} · {c.icd10 or '—'}" for c in kb.classes}
    class_id = st.selectbox("Etiology class", list(names), format_func=names.get, key="kb_class")
    chosen = kb.class_of(class_id)
    st.markdown(f"### {chosen.name}")
    icd = f"{chosen.icd10}" + (f" ({chosen.icd10_note})" if chosen.icd10_note else "")
    st.markdown(f"**ICD-10-CM:** {icd}  \n**Prior:** {chosen.prior:.1%} — *{chosen.prior_src}*  \n{chosen.summary}")
    if len(chosen.profiles) > 1:
        st.markdown("**Sub-profiles:** " + "; ".join(f"{p.name} ({p.weight:.0%})" for p in chosen.profiles))
    st.markdown("**Key findings** of the class in the knowledge base, most informative first (KL divergence from "
                "all presentations of leg cramps, whose base rates are shown before any age effect)")
    st.dataframe(key_findings(kb, class_id), hide_index=True, width="stretch", column_config={
        "finding": st.column_config.TextColumn(width="medium"),
        "in this class": st.column_config.TextColumn(width="medium"),
        "all presentations": st.column_config.TextColumn(width="medium"),
        "source": st.column_config.TextColumn(width="large"),
    })
    references = cited_references(kb, class_id)
    if references:
        st.markdown("**Seed references behind them**\n" + "".join(f"\n- {r}" for r in references))
    with st.expander("Causes the article names that are not classes"):
        for decision in kb.decisions:
            st.markdown(f"- **{decision['cause']}** — {decision['decision']} into {decision['into']}: {decision['reason']}")
