"""``avserve data``, ``avserve train`` and ``avserve eval``: the offline command groups."""
