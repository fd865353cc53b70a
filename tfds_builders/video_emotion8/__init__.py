"""VideoEmotion-8 TFDS builder."""
