"""The Qt shell. Never imports torch at module load: the window shows first."""
