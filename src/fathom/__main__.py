"""``python -m fathom`` runs the CLI."""

from fathom.entry import main

main()
