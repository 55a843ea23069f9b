"""Media fine-tunes: a dataset zip (Wan image-to-video, or Qwen-VL images packed with their index) validated by
ranged reads from OSS, uploaded, trained and deployed."""
