"""FHIR search semantics: the parameter registry, value normalisation, index extraction and query parsing."""
