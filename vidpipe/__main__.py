"""`python -m vidpipe`: the console script."""

import sys

from vidpipe.stages.jobs.entry import main

sys.exit(main())
