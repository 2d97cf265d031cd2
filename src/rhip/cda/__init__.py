"""CDA R2 shared documents (WS/T 500, WS/T 483): pure writers and a structural validator.

``rhip.cda.write`` turns FHIR resources (plain dicts) into ClinicalDocument bytes; ``rhip.cda.schema``
checks a parsed document against a hand-written subset of the CDA R2 content model. Nothing here touches
a database, the network or settings: it depends only on the standard library and lxml (for walking a
parsed tree), so the synthetic generator and the document services use the same code.
"""
