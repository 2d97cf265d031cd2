"""Security, privacy and audit (L2): who is asking (identity), what they may see (policy, consent), the
proof of every access (audit) and document signatures. Every door reaches resident data through
:class:`rhip.security.repository.SecuredRepository`."""
