"""Ekman-6 TFDS builder."""
