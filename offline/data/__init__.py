"""Training data for avserve: the AVSynth generator and the clip cache / batch loader."""
