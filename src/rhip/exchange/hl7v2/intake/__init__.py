"""The parts of the v2 intake pipeline (``rhip.exchange.hl7v2.pipeline`` puts them together)."""
