"""Page: the knowledge browser (needs no model)."""

from crampdx.dashboard.about import knowledge_page

knowledge_page()
