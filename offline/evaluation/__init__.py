"""``avserve eval``: accuracy, compute and wall time of models and window policies on AVSynth."""
