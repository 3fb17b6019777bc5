"""Identity resolution on pseudonyms: probabilistic linkage of keyed encodings.

- :mod:`.linkage`: blocking, Dice similarity, Fellegi–Sunter by EM and one-to-one decisions
  on keyed Bloom-filter encodings (``link_encodings``);
- :mod:`.linkage_cli`: ``fedprofile identity link``.

The server never holds the tenant key: it compares encodings, never raw values.
"""
