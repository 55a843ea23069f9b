"""Qwen token counts with the real BPE vocabulary: the `qwen.tiktoken` file the dashscope package ships, read by
tiktoken the way dashscope's own QwenTokenizer reads it (same split pattern, NFC normalisation), without importing
the dashscope SDK itself.

A chat record counts as its ChatML rendering, `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message, which is
what the model is trained on.
"""

from __future__ import annotations

import binascii
import importlib.util
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Qwen's pre-tokenizer split (dashscope.tokenizers.qwen_tokenizer.PAT_STR).
PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_START_ID = 151643
# tiktoken's merge recursion can overflow on one enormous piece; longer texts are encoded in slices at newlines.
MAX_PIECE = 100_000


class TokenizerMissing(RuntimeError):
    """The vocabulary or tiktoken is not installed: `pip install 'bailian-flow[tokens]'`."""


# Where the FC layer holds the vocabulary (deploy/build.sh copies it out of the dashscope wheel: the functions
# never install dashscope itself), under a directory on sys.path (the layer's /opt/python).
LAYER_VOCABULARY = Path("bailian_flow_tokens") / "qwen.tiktoken"


def vocabulary_path() -> Path:
    """The Qwen vocabulary: the FC layer's copy, else the one the installed dashscope package ships."""
    for entry in sys.path:
        candidate = Path(entry or ".") / LAYER_VOCABULARY
        if candidate.is_file():
            return candidate
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerMissing("the dashscope package (which ships the Qwen vocabulary) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise TokenizerMissing(f"the Qwen vocabulary is missing from the dashscope package ({path})")
    return path


def read_ranks(data: bytes) -> dict[bytes, int]:
    """`<base64 token> <rank>` per line. In one pass of C-level calls: half the time of a line loop (the load is on
    on_upload's cold start)."""
    words = data.split()
    if len(words) % 2:
        raise TokenizerMissing("the Qwen vocabulary is damaged (a token without its rank)")
    return dict(zip(map(binascii.a2b_base64, words[0::2]), map(int, words[1::2]), strict=True))


class QwenTokens:
    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding

    @classmethod
    def load(cls) -> QwenTokens:
        try:
            import tiktoken
        except ImportError:
            raise TokenizerMissing("tiktoken is not installed") from None
        try:
            ranks = read_ranks(vocabulary_path().read_bytes())
        except (OSError, ValueError) as exc:  # binascii.Error is a ValueError
            raise TokenizerMissing(f"the Qwen vocabulary cannot be read: {exc}") from None
        specials = {name: SPECIAL_START_ID + index for index, name in enumerate((ENDOFTEXT, IM_START, IM_END))}
        encoding = tiktoken.Encoding("Qwen", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=specials)
        return cls(encoding)

    def count(self, text: str, *, chat_markup: bool = False) -> int:
        """Tokens of `text`; with chat_markup its `<|im_start|>`/`<|im_end|>` are the special tokens."""
        allowed: Any = {IM_START, IM_END} if chat_markup else set()
        normalized = unicodedata.normalize("NFC", text)
        return sum(
            len(self._encoding.encode(piece, allowed_special=allowed, disallowed_special=()))
            for piece in _pieces(normalized)
        )

    def record_tokens(self, record: Mapping[str, Any], kind: str) -> int:
        """Tokens a valid record trains on: CPT its text; SFT its conversation; DPO the prompt with each answer."""
        if kind == "cpt":
            return self.count(str(record.get("text", "")))
        messages = list(record.get("messages") or [])
        if kind == "dpo":
            prompt = self.count(render_chat(messages), chat_markup=True)
            answers = [record.get("chosen"), record.get("rejected")]
            return 2 * prompt + sum(self.count(render_chat([a]), chat_markup=True) for a in answers if a)
        return self.count(render_chat(messages), chat_markup=True)


def _pieces(text: str) -> Iterator[str]:
    while len(text) > MAX_PIECE:
        cut = text.rfind("\n", 0, MAX_PIECE)
        cut = cut if cut > 0 else MAX_PIECE
        yield text[:cut]
        text = text[cut:]
    yield text


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # typed parts: only text parts are tokens; images are billed otherwise
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def render_chat(messages: list[Any]) -> str:
    return "".join(
        f"{IM_START}{message.get('role', '')}\n{_content_text(message.get('content'))}{IM_END}\n"
        for message in messages
        if isinstance(message, Mapping)
    )
