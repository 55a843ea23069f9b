"""What a validation produces: a precise `DatasetError` or the `DatasetStats` of a good file.

```
ValueError
 └── DatasetError        object_name, line (1-based | None), field (JSON path | None), reason
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DatasetKind = Literal["sft", "dpo", "cpt"]


class DatasetError(ValueError):
    """The first problem found in a dataset, precise enough to fix without opening a debugger.

    `str()` is one line: ``train.jsonl line 7, field messages[2].role: expected 'assistant' after 'user',
    got 'user'``; file-level problems have ``line`` None (``train.jsonl: file is empty``).
    """

    def __init__(self, object_name: str, reason: str, *, line: int | None = None, field: str | None = None):
        self.object_name = object_name
        self.line = line
        self.field = field
        self.reason = reason
        # Every problem found, this one first, when the validator was asked to collect them (max_errors > 1).
        self.errors: tuple[DatasetError, ...] = (self,)
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.object_name
        if self.line is not None:
            where += f" line {self.line}"
        if self.field is not None:
            where += f", field {self.field}" if self.line is not None else f" field {self.field}"
        return f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments would otherwise be lost when the error crosses a process boundary.
        return (_rebuild_error, (self.object_name, self.reason, self.line, self.field))

    def brief(self) -> dict[str, Any]:
        """`{"line", "field", "message"}`: one entry of a list of problems."""
        return {"line": self.line, "field": self.field, "message": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_name": self.object_name,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "message": self._message(),
        }


def _rebuild_error(object_name: str, reason: str, line: int | None, field: str | None) -> DatasetError:
    return DatasetError(object_name, reason, line=line, field=field)


@dataclass(frozen=True)
class DatasetStats:
    """Summary of a dataset that passed validation; `warnings` never block an upload."""

    kind: DatasetKind
    records: int
    bytes: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "records": self.records,
            "bytes": self.bytes,
            "warnings": list(self.warnings),
        }
