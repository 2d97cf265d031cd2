"""Master patient index (EMPI): normalisation, blocking, matching and linking of Patient records."""
