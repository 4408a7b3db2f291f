"""Interoperability: clinical records from other systems (FHIR R4B) read into a crampdx case.

The mapping from codes (LOINC, SNOMED CT, ICD-10, RxNorm) to findings is data
(``fhir_codes.toml``); this package holds only the engine that applies it.
"""

from crampdx.interop.codes import FhirCodes, FhirCodesError, load_codes
from crampdx.interop.fhir import (FhirError, FhirFindings, UnusedRecord, describe_provenance, findings_from_fhir,
                                  resources_from_json)
from crampdx.interop.reading import readable_resources

__all__ = ["FhirCodes", "FhirCodesError", "FhirError", "FhirFindings", "UnusedRecord", "describe_provenance",
           "findings_from_fhir", "load_codes", "readable_resources", "resources_from_json"]
