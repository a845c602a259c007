"""Session recording: the tamper-evident audit store, asciicast transcripts and the recorder attach uses.

`from kdebug.sessions.recorder import open_recorder`; see docs/audit.md for the record schema.
"""
