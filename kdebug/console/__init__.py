"""The local terminal side of a command: progress on stderr, and how stop signals reach the main thread."""
