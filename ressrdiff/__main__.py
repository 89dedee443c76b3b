"""``python -m ressrdiff`` (also what ``torchrun -m ressrdiff`` runs)."""

import sys

from .cli import main

sys.exit(main())
