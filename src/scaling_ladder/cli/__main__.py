"""``python -m scaling_ladder.cli``: the ``ladder`` command (for profilers and environments
without the console script on PATH)."""

from scaling_ladder.cli import main

main()
