"""``python -m seqgan_music`` runs the command line."""

import sys

from seqgan_music.cli import main

sys.exit(main())
