"""``python -m cgan_core.cli`` (used under torchrun)."""

from cgan_core.cli import main

main()
