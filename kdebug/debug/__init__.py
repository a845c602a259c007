"""One debug session: the request, the debug container spec, attach and stream, pod copies."""
