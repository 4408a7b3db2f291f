"""Page: the differential of the entered findings."""

from crampdx.dashboard.differential import differential_page
from crampdx.dashboard.lifecycle import get_diagnoser

diagnoser = get_diagnoser()
if diagnoser is not None:
    differential_page(diagnoser)
