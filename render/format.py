"""Small formatting rules shared by every renderer."""

from __future__ import annotations

from crampdx.model.results import Cause

__all__ = ["cause_label", "literal_markdown", "percent"]

_MARKDOWN_SPECIAL = "\\`*_{}[]<>()#+-.!|~$:"


def percent(probability: float) -> str:
    """A probability as a percentage with one decimal that never shows 0 % or 100 %.

    The model is never certain, so ">99.9%" and "<0.1%" say what the rounding would hide.

    Examples
    --------
    >>> percent(0.4567), percent(0.99996), percent(0.00001)
    ('45.7%', '>99.9%', '<0.1%')
    """
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability:.1%}"


def cause_label(cause: Cause) -> str:
    """``name · ICD-10-CM code`` (a dash where no code fits).

    Examples
    --------
    >>> cause_label(Cause("hypokalemia", "Hypokalemia", "E87.6", 0.9, 2.0))
    'Hypokalemia · E87.6'
    """
    return f"{cause.name} · {cause.icd10 or '—'}"


def literal_markdown(text: object) -> str:
    """Text from outside crampdx (a field name, a FHIR display) as Markdown that shows it literally.

    Every Markdown punctuation character is backslash-escaped and line breaks become spaces, so
    an imported value can never become a link, an image (which a browser would fetch) or a
    heading.

    Examples
    --------
    >>> print(literal_markdown("![x](http://evil.example/t.png)"))
    \\!\\[x\\]\\(http\\://evil\\.example/t\\.png\\)
    """
    flat = " ".join(str(text).split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in flat)
