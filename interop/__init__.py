"""Interoperability: clinical records from other systems (FHIR R4B) read into a crampdx case.

The mapping from codes (LOINC, SNOMED CT, ICD-10, RxNorm) to findings is data
(``fhir_codes.toml``); this package holds only the engine that applies it.
"""
