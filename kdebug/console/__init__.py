"""The local terminal side of a command: raw mode and window size, progress on stderr, and how stop signals
reach the main thread."""
