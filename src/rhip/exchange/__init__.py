"""Data exchange in the formats hospitals speak: HL7 v2 over MLLP and the HL7 v3 interaction services.

Everything that arrives is mapped onto FHIR and stored through the FHIR service, so the master patient
index and every other capability see it as they see FHIR; what cannot be accepted is kept with its raw
bytes in the rejects store (``rhip exchange errors``) so that nothing is lost.
"""
