"""Fine-tune runs: validate the dataset while streaming it to a Bailian file, then train."""
