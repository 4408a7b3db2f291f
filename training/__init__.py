"""The training layer: fit the gradient-boosting model, fit its temperature, evaluate it
against the exact posterior, and write the verified artifact with its model card.

Imports :mod:`crampdx.contract`, :mod:`crampdx.synthetic` and :mod:`crampdx.model` below it.
"""
