"""Keyed Bloom-filter encodings of quasi-identifiers for record linkage (privacy-internal).

- :mod:`.normalize`: canonical forms (case, width, whitespace, Chinese administrative
  suffixes, dates);
- :mod:`.tokens`: the n-grams of a value (bigrams; Hanzi unigrams, bigrams and pinyin);
- :mod:`.encoder`: per-field CLKs under field-specific keys derived from the tenant key;
- :mod:`.wire`: the JSON-lines form an edge writes and the server reads.

Other rooms use it only through ``privacy`` (``LinkageEncoder``, ``EncodedRecord``,
``read_encoded_lines`` ...).
"""
