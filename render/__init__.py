"""Renderers of an :class:`~crampdx.model.Assessment` and of evaluation figures, in one place:
terminal text, Markdown, batch tables and Vega-Lite charts. Front ends only choose which to
call. Imports only the layers below (never the front ends)."""
