"""HL7 v2.3 to 2.5.1: parsing, character sets, mapping onto FHIR (v2-to-FHIR IG) and acknowledgements."""
