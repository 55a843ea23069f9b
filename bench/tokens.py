"""What exact Qwen token counts cost the `on_upload` function, on the data people really have (issue #18 §2).

`on_upload` validates every dataset while streaming it to Bailian; counting its tokens there gives every run its
tokens and cost before training starts. This measures, each in a fresh interpreter (as a cold FC instance), round
after round interleaved so that load from other processes hits all alike:
- the vocabulary's load: `import tiktoken` and the Qwen BPE ranks read from `qwen.tiktoken` (once per instance);
- the validator alone (its fast path), and the validator with every valid record counted (what ingest runs);
- what the FC layer gains (tiktoken, regex and the vocabulary file, on disk).
The data: a realistic SFT mix (not committed): short Chinese customer-service chats (the repository's sample),
long code answers and long Chinese documents (8-60 KB a line), think blocks, and multimodal content parts.

    python bench/tokens.py [--size-mb 60] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD = (
    "import resource, time\nbefore = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nt = time.perf_counter()\n"
    "from bailian_flow.estimate import QwenTokens\ncounter = QwenTokens.load()\nseconds = time.perf_counter() - t\n"
    "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\nprint(grown)\nprint(seconds)"
)
CASES = {
    "validate (fast path)": (
        "import time\nfrom bailian_flow.validate import validate_file\nt = time.perf_counter()\n"
        "stats = validate_file(PATH, 'sft')\nassert stats.records > 0\nprint(time.perf_counter() - t)"
    ),
    "validate + Qwen tokens": (
        "import time\nfrom bailian_flow.estimate import QwenTokens\nfrom bailian_flow.validate import "
        "DatasetValidator\nfrom bailian_flow.validate._stream import feed_file\ncounter = QwenTokens.load()\n"
        "tokens = 0\ndef count(record):\n    global tokens\n    tokens += counter.record_tokens(record, 'sft')\n"
        "t = time.perf_counter()\nv = DatasetValidator('sft', object_name='x', on_record=count)\n"
        "feed_file(v, PATH)\nassert tokens > 0\nprint(time.perf_counter() - t)"
    ),
}

CJK_SENTENCES = [
    "本文档介绍了分布式训练框架的设计原则，包括数据并行、模型并行以及流水线并行的权衡。",
    "在实际部署中，我们需要关注显存占用、通信带宽以及检查点保存的频率。",
    "用户可以通过控制台或者 API 提交训练任务，并在任务详情页查看日志与指标。",
    "如果验证集损失连续三个轮次没有下降，建议提前停止训练以避免过拟合。",
    "数据清洗阶段会去除重复样本、过滤敏感内容，并统一标点符号与全角半角字符。",
    "青禾商城的退换货政策规定，商品签收后七天内可无理由退货，十五天内可换货。",
]
CODE_LINES = [
    "def merge_sorted(parts: list[list[int]]) -> list[int]:",
    "    heap = [(part[0], index, 0) for index, part in enumerate(parts) if part]",
    "    heapq.heapify(heap)",
    "    while heap:",
    "        value, index, position = heapq.heappop(heap)",
    "        yield value",
    "        if position + 1 < len(parts[index]):",
    "            heapq.heappush(heap, (parts[index][position + 1], index, position + 1))",
    "class RetryPolicy:",
    '    """Exponential backoff with jitter, capped at `max_delay` seconds."""',
    "    def delay(self, attempt: int) -> float:",
    "        return min(self.max_delay, self.base * 2 ** attempt) * random.uniform(0.5, 1.0)",
]


def _long_text(rng: random.Random, pool: list[str], size: int, joiner: str) -> str:
    parts: list[str] = []
    total = 0
    while total < size:
        piece = f"{rng.choice(pool)} {rng.randrange(10**6)}"
        parts.append(piece)
        total += len(piece.encode())
    return joiner.join(parts)


def _record(rng: random.Random, samples: list[dict[str, object]], index: int) -> dict[str, object]:
    shape = index % 10
    if shape < 5:  # the short chats most sets are made of
        record = samples[index % len(samples)]
        messages = [dict(message) for message in record["messages"]]  # type: ignore[attr-defined]
        messages[-1]["content"] = f"{messages[-1]['content']} (#{index})"
        return {"messages": messages}
    size = rng.randrange(8_000, 60_000)
    if shape < 7:  # a long code answer
        answer = "```python\n" + _long_text(rng, CODE_LINES, size, "\n") + "\n```"
        question = f"请帮我实现一个多路归并的函数，并解释复杂度。(#{index})"
    elif shape < 9:  # a long Chinese document, with a think block
        answer = "<think>\n" + _long_text(rng, CJK_SENTENCES, size // 4, "") + "\n</think>\n\n"
        answer += _long_text(rng, CJK_SENTENCES, size, "")
        question = f"请总结下面的技术方案，并给出改进建议。(#{index})"
    else:  # multimodal content parts
        content = [
            {"type": "image_url", "image_url": {"url": f"https://example.com/img/{index}.png"}},
            {"type": "text", "text": f"图中的表格说明了什么？(#{index})"},
        ]
        return {
            "messages": [
                {"role": "user", "content": content},
                {"role": "assistant", "content": _long_text(rng, CJK_SENTENCES, size // 8, "")},
            ]
        }
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def generate(path: Path, size_mb: int) -> int:
    samples = [json.loads(line) for line in (ROOT / "samples" / "sft" / "train.jsonl").read_text().splitlines()]
    rng = random.Random(18)
    target = size_mb * 1_000_000
    written = index = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            line = json.dumps(_record(rng, samples, index), ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode())
            index += 1
    return index


def _child(code: str, path: Path) -> list[float]:
    """The child's printed figures, its time last."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    out = subprocess.run(
        [sys.executable, "-c", f"PATH = {str(path)!r}\n{code}"], env=env, check=True, capture_output=True, text=True
    )
    return [float(line) for line in out.stdout.split()]


def _size_of(*names: str) -> int:
    import importlib.util

    total = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        folder = Path(spec.origin).parent
        total += sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "shared"))
    from bailian_flow.estimate._tokens import vocabulary_path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mix.jsonl"
        lines = generate(path, args.size_mb)
        megabytes = path.stat().st_size / 1e6
        print(f"realistic SFT mix: {megabytes:.0f} MB, {lines:,} lines (half short chats, half 8-60 KB)")
        loads: list[float] = []
        grown: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.rounds):
            kilobytes, seconds = _child(LOAD, path)
            loads.append(seconds)
            grown.append(kilobytes)
            for name, code in CASES.items():
                times[name].append(_child(code, path)[-1])
        print(
            f"  vocabulary load (import tiktoken + ranks), once per instance: {statistics.median(loads):.2f} s, "
            f"+{statistics.median(grown) / 1024:.0f} MB RSS"
        )
        speeds = {name: megabytes / statistics.median(seconds) for name, seconds in times.items()}
        for name, speed in speeds.items():
            print(f"  {name:<24} {speed:7.1f} MB/s")
        base, counted = speeds["validate (fast path)"], speeds["validate + Qwen tokens"]
        print(f"  counting costs {1 / counted - 1 / base:.3f} s per MB more ({counted / base:.2f}x the validator)")
        print(f"  a 290 MB dataset: {290 / counted:.0f} s of on_upload's 600 s with counts, {290 / base:.0f} s without")
        layer = _size_of("tiktoken", "regex") + vocabulary_path().stat().st_size
        print(f"  FC layer grows by {layer / 1e6:.1f} MB (tiktoken, regex, qwen.tiktoken)")
        if args.keep:
            kept = ROOT / "build" / "bench-tokens.jsonl"
            kept.parent.mkdir(exist_ok=True)
            path.replace(kept)
            print(f"  kept {kept}")


if __name__ == "__main__":
    main()
