"""Page: the model card and the evaluation."""

from crampdx.dashboard.about import about_page
from crampdx.dashboard.lifecycle import get_diagnoser

diagnoser = get_diagnoser()
if diagnoser is not None:
    about_page(diagnoser)
