"""rhip.fhir."""
