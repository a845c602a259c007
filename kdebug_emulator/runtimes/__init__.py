"""Where the emulator's containers run, behind one `Runtime` protocol (base.py): local processes with ptys
(process.py) or real podman containers (podman.py)."""
