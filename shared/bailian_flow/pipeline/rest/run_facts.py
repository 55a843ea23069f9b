"""What an operator asks about one run, beyond its state: estimate and actual side by side in human units, a
fine-tune's progress while it trains (from the job's logs, read on demand), a kind's own facts (a batch run's
shards), the deployed model with a call example, and what the run still owns on Bailian.

Shown by `GET /runs/{run_id}` under `facts`, by the status page and by `bailian-flow runs show`. Every list is
bounded; a fact that cannot be read (the logs API down) is a note in the answer, never an error of the request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from bailian_flow.pipeline.protocol import kinds
from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunState

log = logging.getLogger("bailian_flow.pipeline")

# The logs API answers at most 1,000 lines a call (bailian-api.md §1, "logs"): the newest page is read, once.
LOG_LINES = 1000
MAX_LOG_LINE_CHARS = 2000
MAX_POINTS = 200  # chart points; a longer run is thinned evenly, its last point kept
MAX_OWNED = 50
# `'loss': 0.52`, `"eval_loss"=0.61`, `epoch: 1.5`: the trainer's dict per logged step (the docs show the logs as
# free text; the keys are the convention of the trainers the service runs).
_METRIC = re.compile(
    r"""['"]?\b(step|total_steps|epoch|loss|eval_loss|val_loss|validation_loss)\b['"]?\s*[:=]\s*"""
    r"""(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"""
)
_VALIDATION_NAMES = ("eval_loss", "val_loss", "validation_loss")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def costs(state: RunState) -> dict[str, Any] | None:
    """Estimate (before the job: the dataset's tokens, epochs, the price) next to what Bailian billed."""
    from bailian_flow.estimate import TRAINING_PRICES

    estimate = state.estimate or {}
    usage = state.usage or {}
    if not usage and all(estimate.get(name) is None for name in ("records", "tokens", "cost")):
        return None  # nothing trained nor to train (a deploy run's estimate is its rate alone)
    tokens, epochs = _number(estimate.get("tokens")), _number(estimate.get("epochs"))
    cost = estimate.get("cost") if isinstance(estimate.get("cost"), dict) else None
    model = str(estimate.get("model") or state.settings.model or "")
    price = TRAINING_PRICES.get(model)
    trained = _number(usage.get("tokens"))
    shown: dict[str, Any] = {
        "model": model,
        "records": estimate.get("records") if isinstance(estimate.get("records"), int) else None,
        "estimate": {
            "tokens": int(tokens) if tokens is not None else None,
            "epochs": int(epochs) if epochs is not None else None,
            # What training consumes: every epoch reads every token.
            "trained_tokens": int(tokens * epochs) if tokens is not None and epochs is not None else None,
            "cost": _amount(cost),
            "basis": cost.get("basis") if cost else None,
        },
        "actual": None,
    }
    if trained is not None:
        amount = trained * price.per_1k_tokens / 1000 if price is not None else None
        shown["actual"] = {
            "trained_tokens": int(trained),
            "cost": {"amount": round(amount, 6), "currency": price.currency} if price and amount is not None else None,
        }
    return shown


def _amount(cost: dict[str, Any] | None) -> dict[str, Any] | None:
    if not cost or _number(cost.get("amount")) is None:
        return None
    return {"amount": round(float(cost["amount"]), 6), "currency": str(cost.get("currency") or "")}


def owned(state: RunState) -> list[dict[str, Any]]:
    """What the run still has on Bailian (bills or holds a quota): files, the job record, the deployment."""
    items: list[dict[str, Any]] = []
    for role, file_id in (("training file", state.file_id), ("validation file", state.validation_file_id)):
        if file_id and file_id not in state.files_deleted:
            items.append({"resource": "file", "id": file_id, "what": role})
    if state.job_id and not state.job_deleted:
        # A succeeded job holds one of the account's 20 job slots until it is deleted (job retention).
        items.append({"resource": "fine-tune job", "id": state.job_id, "what": state.job_status or "job record"})
    if state.deployed_model and not state.undeployed_at:
        what = "deployment" + (f", until {state.deployment_expires_at}" if state.deployment_expires_at else "")
        items.append({"resource": "deployment", "id": state.deployed_model, "what": what})
    if state.imported_model and not state.undeployed_at:
        items.append({"resource": "imported model", "id": state.imported_model, "what": "custom model"})
    # What the run's end of life undid (`RunState.undone`, "kind:id") is gone whatever the other records say.
    undone = {item.partition(":")[2] for item in state.undone}
    return [item for item in items if item["id"] not in undone][:MAX_OWNED]


def call_example(flow: Flow, model: str) -> dict[str, str]:
    """How to call the deployed model: the OpenAI-compatible endpoint of the account's region (or the stack's)."""
    from bailian_flow.client._config import resolve_endpoints

    base = resolve_endpoints(flow.settings.region, flow.settings.base_url).compatible
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}]}, ensure_ascii=False)
    curl = (
        f"curl {base}/chat/completions \\\n"
        '  -H "Authorization: Bearer $DASHSCOPE_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )
    python = (
        "import os\nfrom openai import OpenAI\n\n"
        f'client = OpenAI(api_key=os.environ["DASHSCOPE_API_KEY"], base_url="{base}")\n'
        "answer = client.chat.completions.create(\n"
        f'    model="{model}", messages=[{{"role": "user", "content": "Hello"}}]\n'
        ")\nprint(answer.choices[0].message.content)"
    )
    return {"base_url": base, "curl": curl, "python": python}


def parse_progress(lines: list[str], epochs: int | None) -> dict[str, Any]:
    """Step, epoch, training and validation loss from a job's log lines (unrecognised lines are skipped)."""
    points: dict[int, dict[str, float]] = {}
    total_steps: int | None = None
    for line in lines:
        found = {name: float(value) for name, value in _METRIC.findall(line[:MAX_LOG_LINE_CHARS])}
        if "step" not in found or ("loss" not in found and not any(n in found for n in _VALIDATION_NAMES)):
            continue
        step = int(found["step"])
        if "total_steps" in found:
            total_steps = int(found["total_steps"])
        point = points.setdefault(step, {})
        if "epoch" in found:
            point["epoch"] = found["epoch"]
        if "loss" in found:
            point["loss"] = found["loss"]
        for name in _VALIDATION_NAMES:
            if name in found:
                point["eval_loss"] = found[name]
    steps = sorted(points)
    if not steps:
        return {"step": None, "total_steps": total_steps, "epoch": None, "epochs": epochs, "points": []}
    last = steps[-1]
    if len(steps) > MAX_POINTS:
        stride = len(steps) / MAX_POINTS
        steps = sorted({steps[int(index * stride)] for index in range(MAX_POINTS - 1)} | {last})
    chart = [
        {"step": step, "loss": points[step].get("loss"), "eval_loss": points[step].get("eval_loss")} for step in steps
    ]
    epoch = points[last].get("epoch")
    if epoch is None and total_steps and epochs:
        epoch = round(last / (total_steps / epochs), 2)
    losses = [points[step]["loss"] for step in sorted(points) if "loss" in points[step]]
    evals = [points[step]["eval_loss"] for step in sorted(points) if "eval_loss" in points[step]]
    return {
        "step": last,
        "total_steps": total_steps,
        "epoch": epoch,
        "epochs": epochs,
        "loss": losses[-1] if losses else None,
        "eval_loss": evals[-1] if evals else None,
        "points": chart,
    }


async def training_progress(flow: Flow, state: RunState) -> dict[str, Any] | None:
    """A training fine-tune's progress, from the newest page of its job's logs (one call; two past 1,000 lines)."""
    if state.stage != "training" or not state.job_id:
        return None
    epochs = _number((state.estimate or {}).get("epochs")) or _number(state.settings.hyper_parameters.get("n_epochs"))
    try:
        page = await flow.client.fine_tunes.logs(state.job_id, offset=0, line=LOG_LINES)
        if page.total > LOG_LINES:  # a long job: its newest page instead
            page = await flow.client.fine_tunes.logs(state.job_id, offset=page.total - LOG_LINES, line=LOG_LINES)
    except Exception as exc:  # the page shows the rest of the run all the same
        log.warning("run %s: the job's logs could not be read: %s", state.run_id, type(exc).__name__)
        return {"error": f"the job's logs could not be read ({type(exc).__name__}); try again"}
    return parse_progress([str(line) for line in page.logs[:LOG_LINES]], int(epochs) if epochs else None)


async def run_facts(flow: Flow, state: RunState) -> dict[str, Any]:
    facts: dict[str, Any] = {"costs": costs(state), "owns": owned(state)}
    model = state.deployed_model if not state.undeployed_at else None
    if model:
        facts["deployment"] = {"model": model, **call_example(flow, model)}
    progress = await training_progress(flow, state)
    if progress is not None:
        facts["progress"] = progress
    shown = kinds.spec_of(state.kind).hook("shown")
    if shown is not None:
        extra = dict(shown(state))
        facts["owns"] = (facts["owns"] + list(extra.pop("owns", [])))[:MAX_OWNED]
        facts.update(extra)
    return facts
