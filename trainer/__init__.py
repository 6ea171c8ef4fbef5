"""SignSeek trainer: encoder + classifier models, augmentations, losses, train / evaluate / export.

Run `python -m trainer --help`. Imports torch; `signseek` never imports this package.
"""
