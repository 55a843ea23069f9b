"""Run kinds, one folder each: its stages, settings, the resources it makes and their undo."""
