# Through entry.py, which sets up signal handling before the CLI's heavy imports.
from afpbisect.entry import main

main()
