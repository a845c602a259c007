"""`kdebug doctor`: pure checks over a facts dict, and the adapter that gathers the facts."""
