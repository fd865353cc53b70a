"""Bilibili time-sync-comment (danmaku) pretraining corpus TFDS builder."""
