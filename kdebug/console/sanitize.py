"""PURE: make an untrusted string (a server message, a name read from the session store) safe for a terminal.

A server or a forged record can carry escape sequences: OSC 52 writes the clipboard, CSI 2J clears
the screen, a carriage return redraws the line as a fake prompt. Every control character is shown
as a visible escape instead, so the text stays readable and nothing reaches the terminal raw.
"""

from __future__ import annotations

import re

# C0 controls (newline and tab stay where the text is multi-line), DEL, C1 controls (8-bit CSI, OSC...)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """`text` with each control character replaced by `\\xNN`; `one_line` escapes newline and tab too."""
    return (_CONTROLS_ONE_LINE if one_line else _CONTROLS).sub(_escape, text)
