"""Command-line front ends: ``cloaca`` (:mod:`cloaca.cli.build`). The only layer that prints."""
