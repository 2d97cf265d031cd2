"""Electronic signatures (电子签名) of documents and referral packages: SM2/SM3 (GM/T 0003, GM/T 0004), RSA
and ECDSA with X.509 certificates chaining to a configured CA bundle, kept as FHIR Provenance.signature and
verified on retrieval.

Modules: :mod:`.sm2` and :mod:`.sm3` (the Chinese algorithms, pure Python), :mod:`.keys` and
:mod:`.algorithms` (keys and sign/verify for every family), :mod:`.certificates` (X.509 and the trust
bundle), :mod:`.issue` (making certificates), :mod:`.targets` (what is signed), :mod:`.jws` (the signature
format), :mod:`.provenance` (Signer, Verifier, statuses) and :mod:`.fhir_api` (the FHIR operations).
"""
