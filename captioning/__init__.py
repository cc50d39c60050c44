"""Live captions: audio conversion, voice activity detection, ASR engines and caption writers.

Imports nothing from the rest of forumlive.
"""
