"""`python -m kdebug` runs the CLI."""

from kdebug.cli.main import run

run()
