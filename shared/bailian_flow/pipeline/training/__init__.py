"""The training leg a fine-tuning kind shares: file-ready → starting-job → training → job-succeeded (start the
fine-tune, follow it), between the kind's own upload and the delivery leg."""
