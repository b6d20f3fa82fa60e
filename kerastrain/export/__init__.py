"""Using a finished run: prediction, and compression to LiteRT models."""
