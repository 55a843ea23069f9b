"""Streaming validator speed on realistic chat data, next to a bare `for line in f: json.loads(line)` loop.

Generates, deterministically from `--seed`, the data people really fine-tune on (not committed, deleted after):
- SFT (`--mb`, default 60 MB): short CJK chats; long answers of 8-60 KB (fenced code, documents with tables and
  numbers); multimodal user turns (OpenAI `image_url` parts and DashScope `{"image"}`/`{"video"}` parts); `<think>`
  blocks at the start of the last answer (the only place the SFT format allows them, bailian-api.md §9); loss
  weights; a few lines with extra fields (tolerated); about a third of the lines written with `\\uXXXX` escapes
  (`json.dumps` default) and the rest as raw UTF-8;
- DPO and CPT (a quarter of `--mb` each): preference pairs with long answers, long documents.
Then times, each in a fresh interpreter, round after round interleaved so that load from other processes hits all
alike, per file:
- the anchor: `for line in f: json.loads(line)` (binary and text mode; the faster of the two is the anchor),
- `msgspec.json.decode(line)` untyped (the raw decode the fast path builds on),
- `validate_file(path, kind)`, the streaming validator the pipeline runs, with every rule.
Each child times itself in CPU seconds (`time.process_time()`): on this shared 2-core machine wall time moves by a
third with the other engineers' load, CPU time by a few per cent. Prints the median speed (MB/s), the ratio to the
anchor and each child's peak RSS (memory must stay flat).
Target: validator >= 1.0x the anchor on each file.

    python bench/validate_speed.py [--mb 60] [--rounds 3] [--seed 18] [--kinds sft,dpo,cpt] [--keep]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.0

_TIMED = "import json, time\nt = time.process_time()\n{body}\nprint(time.process_time() - t)"
CASES = {
    "json.loads, binary": _TIMED.format(body="with open(PATH, 'rb') as f:\n    for line in f: json.loads(line)"),
    "json.loads, text": _TIMED.format(
        body="with open(PATH, encoding='utf-8') as f:\n    for line in f: json.loads(line)"
    ),
    "msgspec decode": "import msgspec\n"
    + _TIMED.format(body="decode = msgspec.json.decode\nwith open(PATH, 'rb') as f:\n    for line in f: decode(line)"),
    # Set up outside the timing, as the anchors' `import json` is: the first validator loads msgspec and builds its
    # decoders (about 12 ms, once per process).
    "validate_file": "from bailian_flow.validate import DatasetValidator, validate_file\n"
    "DatasetValidator(KIND, object_name='warm-up')\n"
    + _TIMED.format(body="stats = validate_file(PATH, KIND)\nassert stats.records > 0"),
}
ANCHORS = ("json.loads, binary", "json.loads, text")

# Common CJK characters and phrases, so that text has realistic UTF-8 width and escapes.
_HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
    "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
    "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处理府研质"
)
_PHRASES = [
    "您好！现货商品会在付款后 24 小时内发货，预售商品以商品页标注的发货时间为准。",
    "请提供订单号，我马上为您处理。",
    "根据《消费者权益保护法》第二十五条，网购商品自收到之日起七日内可无理由退货。",
    "这个问题可以分三步来看：先确认需求，再比较方案，最后评估成本。",
    "Note: the API returns HTTP 429 when the rate limit (60 requests per minute) is exceeded.",
]
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "at",
    "an",
    "which",
    "can",
    "not",
    "data",
    "model",
]
_CODE = [
    "def {name}(items: list[int], limit: int = {n}) -> dict[str, int]:",
    '    """Count the items below {n} and return a summary."""',
    "    counts = {{}}",
    "    for index, value in enumerate(items):",
    "        if value < limit and index % {m} == 0:",
    "            counts[str(value)] = counts.get(str(value), 0) + 1",
    '    print(f"processed {{len(items)}} items in {{elapsed:.3f}}s\\tok")',
    "    return {{key: counts[key] for key in sorted(counts)}}",
    "",
    "const {name} = async (url) => {{ const r = await fetch(url + '?page={n}'); return r.json(); }};",
    "SELECT id, name, price FROM orders WHERE created_at > '2026-0{m}-01' AND amount >= {n};",
    "# 注释：这里的阈值 {n} 来自线上统计，修改前请先跑回归测试",
]


class _Text:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def cjk(self, chars: int) -> str:
        rng = self.rng
        out: list[str] = []
        size = 0
        while size < chars:
            if rng.random() < 0.3:
                piece = rng.choice(_PHRASES)
            else:
                piece = "".join(rng.choices(_HAN, k=rng.randint(8, 30))) + rng.choice("，。；！？")
            out.append(piece)
            size += len(piece)
        return "".join(out)

    def english(self, words: int) -> str:
        return " ".join(self.rng.choices(_WORDS, k=words)).capitalize() + "."

    def code(self, lines: int) -> str:
        rng = self.rng
        body = [
            rng.choice(_CODE).format(name=f"f{rng.randrange(10**6)}", n=rng.randrange(10**7), m=rng.randint(1, 9))
            for _ in range(lines)
        ]
        return "```python\n" + "\n".join(body) + "\n```"

    def table(self, rows: int) -> str:
        rng = self.rng
        lines = ["| 月份 | 订单数 | 金额（元） | 同比 |", "|---|---|---|---|"]
        lines += [
            f"| 2026-{rng.randint(1, 12):02d} | {rng.randrange(10**6)} | {rng.uniform(0, 1e7):.2f} | "
            f"{rng.uniform(-50, 50):+.1f}% |"
            for _ in range(rows)
        ]
        return "\n".join(lines)

    def long_answer(self, target_bytes: int) -> str:
        """A document or a code answer of about `target_bytes` UTF-8 bytes."""
        rng = self.rng
        parts: list[str] = []
        size = 0
        while size < target_bytes:
            choice = rng.random()
            if choice < 0.35:
                piece = self.code(rng.randint(10, 60))
            elif choice < 0.5:
                piece = self.table(rng.randint(5, 40))
            elif choice < 0.8:
                piece = self.cjk(rng.randint(100, 600))
            else:
                piece = self.english(rng.randint(50, 300))
            parts.append(piece)
            size += len(piece.encode())
        return "\n\n".join(parts)


def _sft(text: _Text) -> dict[str, Any]:
    rng = text.rng
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": text.cjk(rng.randint(40, 200))})
    turns = rng.choice((1, 1, 1, 2, 3))
    shape = rng.random()
    for turn in range(turns):
        last = turn == turns - 1
        user: Any = text.cjk(rng.randint(10, 120))
        if shape < 0.2 and turn == 0:  # multimodal
            if rng.random() < 0.5:
                user = [
                    {"type": "image_url", "image_url": {"url": f"https://img.example.com/{rng.randrange(10**9)}.jpg"}},
                    {"type": "text", "text": user},
                ]
            else:
                media: dict[str, Any] = (
                    {"image": f"oss://bucket/images/{rng.randrange(10**9)}.png"}
                    if rng.random() < 0.7
                    else {"video": [f"oss://bucket/frames/{rng.randrange(10**9)}_{i}.jpg" for i in range(4)]}
                )
                user = [media, {"text": user}]
        messages.append({"role": "user", "content": user})
        if last and shape >= 0.2 and shape < 0.5:  # long answer: code, documents
            answer = text.long_answer(rng.randint(8_000, 60_000))
        else:
            answer = text.cjk(rng.randint(40, 400))
        if last and 0.5 <= shape < 0.7:  # thinking data: one block at the start of the last answer
            reasoning = text.long_answer(rng.randint(1_000, 20_000))
            answer = f"<think>\n{reasoning}\n</think>\n\n{answer}"
        assistant: dict[str, Any] = {"role": "assistant", "content": answer}
        if rng.random() < 0.1:
            assistant["loss_weight"] = rng.choice((1, 0.5, 0.25))
        messages.append(assistant)
    record: dict[str, Any] = {"messages": messages}
    if rng.random() < 0.03:
        record["meta"] = {"source": "crawl", "id": rng.randrange(10**12)}  # extra fields are tolerated
    return record


def _dpo(text: _Text) -> dict[str, Any]:
    rng = text.rng
    long = rng.random() < 0.3
    chosen = text.long_answer(rng.randint(8_000, 40_000)) if long else text.cjk(rng.randint(60, 400))
    rejected = text.long_answer(rng.randint(2_000, 20_000)) if long else text.cjk(rng.randint(10, 200))
    messages = [{"role": "user", "content": text.cjk(rng.randint(10, 120))}]
    return {
        "messages": messages,
        "chosen": {"role": "assistant", "content": chosen},
        "rejected": {"role": "assistant", "content": rejected},
    }


def _cpt(text: _Text) -> dict[str, Any]:
    rng = text.rng
    return {"text": text.long_answer(rng.randint(2_000, 60_000)) if rng.random() < 0.5 else text.cjk(300)}


MAKERS: dict[str, Callable[[_Text], dict[str, Any]]] = {"sft": _sft, "dpo": _dpo, "cpt": _cpt}


def generate(path: Path, kind: str, size_bytes: int, seed: int) -> tuple[int, int]:
    """(bytes, lines) written. Line by line: a child's peak RSS counts what this process held when it forked."""
    text = _Text(random.Random(f"{seed}-{kind}"))
    make = MAKERS[kind]
    written = lines = 0
    with path.open("wb") as handle:
        while written < size_bytes:
            line = json.dumps(make(text), ensure_ascii=text.rng.random() < 0.33).encode() + b"\n"
            handle.write(line)
            written += len(line)
            lines += 1
    return written, lines


def run(case: str, path: Path, kind: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one case in a fresh interpreter."""
    code = f"PATH = {str(path)!r}\nKIND = {kind!r}\n" + CASES[case]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    if status != 0:
        raise SystemExit(f"{case} failed on {path.name}")
    return float(out.strip().splitlines()[-1]), usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=60, help="size of the SFT file; DPO and CPT get a quarter each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--kinds", default="sft,dpo,cpt")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (their paths are printed)")
    args = parser.parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    directory = Path(tempfile.mkdtemp(prefix="validate-speed-"))
    files: dict[str, tuple[Path, int]] = {}
    for kind in kinds:
        path = directory / f"{kind}.jsonl"
        size = int(args.mb * 1e6 * (1 if kind == "sft" else 0.25))
        written, lines = generate(path, kind, size, args.seed)
        files[kind] = (path, written)
        print(f"{kind}: {written / 1e6:.0f} MB, {lines:,} lines")
    print(f"Python {sys.version.split()[0]}, seed {args.seed}")
    times: dict[tuple[str, str], list[float]] = {}
    peaks: dict[tuple[str, str], list[int]] = {}
    try:
        for _ in range(args.rounds):
            for kind, (path, _size) in files.items():
                for case in CASES:
                    seconds, peak = run(case, path, kind)
                    times.setdefault((kind, case), []).append(seconds)
                    peaks.setdefault((kind, case), []).append(peak)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            for path, _size in files.values():
                path.unlink()
            directory.rmdir()
    print(f"{'file':<5} {'case':<20} {'MB/s':>7} {'x anchor':>9} {'peak RSS':>10}")
    verdicts = []
    for kind, (_path, size) in files.items():
        speed = {case: size / 1e6 / statistics.median(times[kind, case]) for case in CASES}
        anchor = max(ANCHORS, key=lambda case: speed[case])
        for case in CASES:
            mark = "  (anchor)" if case == anchor else ""
            rss = max(peaks[kind, case]) / 1024
            ratio = speed[case] / speed[anchor]
            print(f"{kind:<5} {case:<20} {speed[case]:>7.0f} {ratio:>8.2f}x {rss:>7.0f} MiB{mark}")
        verdicts.append(f"{kind} {speed['validate_file'] / speed[anchor]:.2f}x")
    print(f"validator / anchor: {', '.join(verdicts)} (target >= {TARGET:.1f}x; medians of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
