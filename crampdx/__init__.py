"""crampdx: decision support for the differential diagnosis of leg cramps.

The installed import names live under this one namespace; the folders keep the project's
layout (``pyproject.toml`` maps them)::

    crampdx.contract   contract/    finding schema, case validation, case files, input limits
    crampdx.interop    interop/     FHIR R4B records read into a case (a declarative code table)
    crampdx.synthetic  synthetic/   knowledge base, generator, exact inference
    crampdx.model      model/       verified artifacts, compiled forest, Diagnoser, Assessment
    crampdx.render     render/      text, Markdown, tables, charts and CDS Hooks cards of an Assessment
    crampdx.training   training/    fit, calibrate, evaluate, model card
    crampdx.cli        cli/         the ``crampdx`` command line
    crampdx.dashboard  dashboard/   the Streamlit pages (``app.py`` is the entry script)
    crampdx.service    service/     the HTTP and CDS Hooks service (``crampdx serve``)

Each layer imports only the layers listed above it (``tests/test_layers.py`` checks every
import statement). This module itself imports nothing heavy: ``crampdx --help`` stays fast.

crampdx is decision support for clinicians, trained on synthetic cases; it has not been
validated on patients.
"""

__version__ = "0.2.0"

DISCLAIMER = (
    "crampdx is decision support for clinicians, trained on synthetic cases generated from one "
    "review article; it has not been validated on patients and must not replace clinical judgement."
)

__all__ = ["DISCLAIMER", "__version__"]
