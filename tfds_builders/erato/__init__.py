"""ERATO (pairwise emotional relationship recognition) TFDS builder."""
