"""Real development vignettes mapped into crampdx cases (data, not code).

``vignettes/dev.jsonl``: 70 published case descriptions, each with its gold etiology class,
the crampdx case built only from what the description states, and what could not be mapped.
See ``vignettes/README.md`` for how the set was built and its limits.
"""

from pathlib import Path

DEV_VIGNETTES = Path(__file__).parent / "vignettes" / "dev.jsonl"

__all__ = ["DEV_VIGNETTES"]
