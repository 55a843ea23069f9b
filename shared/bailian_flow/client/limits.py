"""Per-file size limits of the native file API (`/api/v1/files`), importable without the client.

The pages disagree, so the strictest documented number per purpose holds (service-contract.md#C14):

- "上传文件" / "Upload a file" (help.aliyun.com/zh/model-studio/upload-file-api, 使用限制, 2026-08-26): fine-tune
  300 MB, batch 500 MB, file-extract 150 MB per file.
- The model-customization file management page (help.aliyun.com/document_detail/2712476.html, 使用限制) also says
  300 MB; its English twin (help.aliyun.com/en/model-studio/model-customization-file-management-service, Usage
  limits) and the seed say 1 GB.
- Image/video generation training data is one .zip of at most 1 GB (same pages, purpose `fine-tune`; the Wan
  fine-tune API reference, "上传数据集": "zip 压缩包大小 ≤ 1GB").

The validator imports these to warn before a run uploads; the client refuses a larger file before sending it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATCH_MAX_BYTES",
    "FILE_EXTRACT_MAX_BYTES",
    "FINE_TUNE_MAX_BYTES",
    "FINE_TUNE_ZIP_MAX_BYTES",
    "max_file_bytes",
]

MB: Final = 1 << 20
FINE_TUNE_MAX_BYTES: Final = 300 * MB
FINE_TUNE_ZIP_MAX_BYTES: Final = 1 << 30
BATCH_MAX_BYTES: Final = 500 * MB
FILE_EXTRACT_MAX_BYTES: Final = 150 * MB

_BY_PURPOSE: Final = {
    "fine-tune": FINE_TUNE_MAX_BYTES,
    "batch": BATCH_MAX_BYTES,
    "file-extract": FILE_EXTRACT_MAX_BYTES,
}


def max_file_bytes(purpose: str, filename: str) -> int | None:
    """The largest file the native API takes for `purpose` (None for a purpose no page limits)."""
    if purpose == "fine-tune" and filename.lower().endswith(".zip"):
        return FINE_TUNE_ZIP_MAX_BYTES
    return _BY_PURPOSE.get(purpose)
