"""Raw media -> model inputs: decoding video and audio (`media`), and what later builds on it.

Modules are imported by name (`from jaxaffect.features import media`), so that importing the
package does not load FFmpeg.
"""
