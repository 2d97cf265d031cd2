"""The audit trail (IHE BALP AuditEvents on a hash-chained log): recording, searching and verifying.

``AuditTrail`` (:mod:`.trail`) is what the secured repository and the doors use; ``rhip audit`` verifies
and searches the log from the command line.
"""
