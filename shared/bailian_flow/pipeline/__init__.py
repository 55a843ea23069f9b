"""The fine-tune pipeline: the state machine and the logic behind each FC function."""
