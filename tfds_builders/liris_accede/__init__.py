"""LIRIS-ACCEDE (discrete) TFDS builder."""
