# Through entry.py, which sets up signal handling before the CLI's heavy imports.
from .entry import main

main()
