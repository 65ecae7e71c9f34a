"""`python -m afpbisect.synthetic DEST ...`: generate the synthetic target (target.main)."""
import sys

from afpbisect.synthetic.target import main

sys.exit(main())
