"""Terminology (术语与字典): the platform's code systems and value sets, and the operations on them."""
