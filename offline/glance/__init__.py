"""Glance distillation: snippet/teacher data (``data``), the trainer (``trainer``) and the
run that writes a package with its glance attached (``distill``)."""
