"""Gateway: the one public door."""
