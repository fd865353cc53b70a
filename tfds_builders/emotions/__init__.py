"""eMotions TFDS builder (raw short videos: decoded frames + 16 kHz audio)."""
