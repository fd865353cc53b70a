"""LIReC on MovieGraphs (interactions, relationships, character pairs) TFDS builder."""
