"""ASR engines behind ``captioning.engine.Engine``."""
