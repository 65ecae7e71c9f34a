"""`python3 -m afpbisect.rerender RESULT.json --out DIR ...` (README): kept at this address;
the command lives in afpbisect/commands/rerender_result.py."""
from afpbisect import stdio
from afpbisect.commands.rerender_result import main

if __name__ == "__main__":
    stdio.run(main)   # a closed stdout: exit 141, never a traceback (stdio.py)
