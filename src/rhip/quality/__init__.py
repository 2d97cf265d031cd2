"""Data quality (数据质控): every incoming resource scored for completeness, validity, consistency and
timeliness by rules kept as data files, counted per institution and day, reported as JSON and xlsx.

L4, beside analytics: it reads the store (never writes clinical data), the terminology service for value
sets and the resident index's ID-number check. See docs/data-quality.md.
"""
