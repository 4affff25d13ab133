"""The recipe for the sandbox image: data files, located for the builder."""

from pathlib import Path

RECIPE_DIR = Path(__file__).resolve().parent
