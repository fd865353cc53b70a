"""MEmoR (multimodal emotion reasoning, The Big Bang Theory) TFDS builder."""
