"""Environments: conda environment files (solved and installed with rattler, or mapped to the
Python package index when no channel answers), and which Python a repository gets."""
