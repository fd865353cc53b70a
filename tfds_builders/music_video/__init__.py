"""Music_video TFDS builder (raw music videos: decoded frames + 16 kHz audio)."""
