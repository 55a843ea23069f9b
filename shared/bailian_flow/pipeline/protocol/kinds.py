"""The run-kind interface, and the one place that registers the kinds.

A run kind (fine-tune, import, batch, ...) lives in a folder of its own under `pipeline/kinds/` and plugs into the
run protocol through a `KindSpec`, the `SPEC` of its `spec` module: its stages and the steps that act on them, the
state it adds to a run, the Bailian resources it makes and how they are found and undone, what it needs from
admission, and what the timer follows for it. Generic code (the protocol, the timer, the REST door, the entry
points) never imports a kind's module: it asks `spec_of(kind)`, which imports the module `REGISTERED` names when a
run of that kind is first met. A spec module holds only names (`"module:function"` under `bailian_flow.pipeline`),
so reading every spec loads no stage code; a step or hook is imported when first called (cold start: a handler
loads only the stages its runs are in).

Adding a kind: a folder under `pipeline/kinds/`, and one line in `REGISTERED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bailian_flow.config import Settings
    from bailian_flow.pipeline.protocol.state import RunState

# kind -> its spec module under `bailian_flow.pipeline`. The one registration.
REGISTERED: dict[str, str] = {
    "fine-tune": "kinds.fine_tune.spec",
    "import": "kinds.import_only.spec",
    "batch": "kinds.batch.spec",
    "deploy": "kinds.deployment.spec",
    "media-fine-tune": "kinds.media_fine_tune.spec",
}

# The FC functions that act on stages (the timer polls; the webhook only reads and commits).
FUNCTIONS = ("on_upload", "on_file_ready", "on_success")


class HookRefused(Exception):
    """A kind's hook declines a request the run cannot take now (the REST door answers 409 with the reason)."""


@dataclass(frozen=True)
class Opener:
    """Which uploaded objects open a run of a kind: keys under the prefix `Settings.<prefix_setting>` ending in
    `suffix`, opened by `open` (`"module:function"`, `(flow, bucket, key, etag, *, first_stage) -> (state,
    created)`). `chained` openers write a first entry whose own event hands the run on (no step runs at once)."""

    prefix_setting: str
    suffix: str
    open: str
    chained: bool = False


@dataclass(frozen=True)
class Quota:
    """An account quota a kind's runs may wait for: its counter (`"module:function"`, see `timer.quotas.Counter`)
    and the bulk list family it reads."""

    counter: str
    family: str


@dataclass(frozen=True)
class KindSpec:
    name: str
    # Fact stage -> the step that acts on it; intent stage -> the act it stands for (also when resumed).
    facts: Mapping[str, str]
    acts: Mapping[str, str]
    # FC function -> the stages it acts on for this kind.
    handled_by: Mapping[str, frozenset[str]]
    # Polled stage -> (bulk family, the state's id field, its status field or "" when any non-running status moves).
    follows: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    # Polled stage -> the recorded statuses on which its step leaves the stage: a run recording one is still
    # there only because its commit was lost, so the timer looks at it even though the list shows no change.
    settled: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Stages polled some other way (`RunState.followed`, e.g. a batch run's shards).
    polled: frozenset[str] = frozenset()
    # Stage -> the stage written to re-drive it when its event went unanswered.
    reannounce: Mapping[str, str] = field(default_factory=dict)
    # Stages whose own stage marker chains the next function (written by the webhook, the timer or a step).
    triggering: frozenset[str] = frozenset()
    # `"module:Class"`: the RunState subclass holding what the kind adds to a run (None: RunState itself).
    state_model: str | None = None
    # Resource kinds only this kind makes (see `cleanup.Made`), found and undone by its hooks, each with its place
    # in a sweep (0: what runs and bills is stopped first, ... 3: files last, once nothing uses them).
    resources: Mapping[str, int] = field(default_factory=dict)
    # Of those, the ones swept only when the whole run goes (never for one act's result).
    whole_run_resources: frozenset[str] = frozenset()
    # Family -> `"module:function"`, an auditor (`timer.audit.Auditor`) reading one slice of a list of this kind's
    # resources and naming each one's run and attempt from its name, for the timer's backstop.
    audits: Mapping[str, str] = field(default_factory=dict)
    openers: tuple[Opener, ...] = ()
    # A `POST /runs` body field that starts a run of this kind (e.g. `import`), handed to the hook `start_request`
    # `(flow, body) -> (state, created)`, which raises SettingsError for the caller's own mistakes (a 400).
    request_field: str | None = None
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    # The Bailian operations its runs use (`protocol/offered.REGIONS`: "fine-tune", "import", "batch"), checked
    # against the configured region when a run opens, with the delivery leg's deployment if its settings deploy.
    uses: frozenset[str] = frozenset()
    # The stage a retried FAILED run restarts from (None: from what it has, a dataset's `requested` or further).
    retry_from: str | None = None
    # Optional hooks by name, `"module:function"`: see `hook`.
    hooks: Mapping[str, str] = field(default_factory=dict)

    @property
    def intents(self) -> frozenset[str]:
        return frozenset(self.acts)

    @property
    def stages(self) -> frozenset[str]:
        return frozenset(self.facts) | frozenset(self.acts) | frozenset(self.follows) | self.polled

    def hook(self, name: str) -> Any | None:
        """The kind's hook `name`, imported now; None when the kind has none. Hooks in use:
        `stop(flow, state, kinds) -> kinds` stops what the run's records name before a sweep and returns the resource
        kinds to sweep; `find(flow, state, kinds) -> list[Made]` and `undo(flow, made) -> str` for `resources`;
        `requests_fit(flow, needs, memo) -> bool` for a waiting run held back by other runs' pending requests;
        `start_request(flow, body)` opens a run from a REST body (`request_field`); `request_settings(value)` checks
        a REST body's settings; `settings_for(flow, key, metadata, explicit)`
        reads an object's settings as the state's update; `agrees(state, explicit)` tells a repeated request;
        `retry_keeping(state) -> (stage, updates) | None` where a failed run's retry resumes, keeping what it can;
        `scale(flow, current, body) -> state | None` resizes what a DONE run serves (`POST /runs/{id}/scale`;
        SettingsError for the body, HookRefused when the run cannot be scaled now, None when it lost a race);
        `shown(state) -> dict` the kind's own facts for the status page and `runs show` (bounded; its `owns`, a
        list, adds to what the run still has on Bailian; its `pending_requests` counts in the account's view)."""
        spec = self.hooks.get(name)
        return None if spec is None else named(spec)

    def required(self, name: str) -> Any:
        """A hook the kind must have for what it declares (e.g. `find` and `undo` for its `resources`)."""
        hook = self.hook(name)
        if hook is None:
            raise LookupError(f"run kind {self.name!r} has no {name!r} hook")
        return hook


def named(spec: str) -> Any:
    """`"module:attribute"` under `bailian_flow.pipeline`, imported now."""
    module, _, attribute = spec.partition(":")
    return getattr(import_module(f"bailian_flow.pipeline.{module}"), attribute)


@cache
def spec_of(kind: str) -> KindSpec:
    """The spec of a registered kind (imports its spec module, which names but does not load its stages)."""
    if kind not in REGISTERED:
        raise KeyError(f"unknown run kind {kind!r}")
    spec: KindSpec = named(f"{REGISTERED[kind]}:SPEC")
    return spec


def state_model(kind: str) -> type[RunState]:
    """The state class of a kind's runs (RunState, or the kind's subclass holding what it adds)."""
    from bailian_flow.pipeline.protocol.state import RunState

    spec = spec_of(kind)
    if spec.state_model is None:
        return RunState
    model: type[RunState] = named(spec.state_model)
    return model


def all_specs() -> list[KindSpec]:
    return [spec_of(kind) for kind in REGISTERED]


@cache
def handled_by(function: str) -> frozenset[str]:
    """Every stage `function` acts on, for any kind."""
    return frozenset().union(*(spec.handled_by.get(function, frozenset()) for spec in all_specs()))


@cache
def intents() -> frozenset[str]:
    return frozenset().union(*(spec.intents for spec in all_specs()))


@cache
def polled() -> frozenset[str]:
    """Stages whose progress only polling can see."""
    return frozenset().union(*(frozenset(spec.follows) | spec.polled for spec in all_specs()))


@cache
def triggering() -> frozenset[str]:
    return frozenset().union(*(spec.triggering for spec in all_specs()))


def reannounce_as(kind: str, stage: str) -> str | None:
    return spec_of(kind).reannounce.get(stage)


def owner_of_resource(resource: str) -> KindSpec | None:
    """The kind whose own resource kind this is (None: one the protocol knows itself)."""
    for spec in all_specs():
        if resource in spec.resources:
            return spec
    return None


def opener_for(settings: Settings, key: str) -> tuple[str, Opener] | None:
    """The kind (and its opener) an uploaded object under a watched prefix opens; the longest prefix wins."""
    found: list[tuple[int, str, Opener]] = []
    for spec in all_specs():
        for opener in spec.openers:
            prefix = getattr(settings, opener.prefix_setting)
            if key.startswith(prefix) and key.endswith(opener.suffix):
                found.append((len(prefix) + len(opener.suffix), spec.name, opener))
    if not found:
        return None
    _, kind, opener = max(found, key=lambda item: item[0])
    return kind, opener


def watched(settings: Settings, *, chained: bool | None = None) -> list[tuple[str, str, str]]:
    """(kind, prefix, suffix) of every object an upload may open a run from (only chained openers, or only the
    others, when `chained` says), in registration order."""
    return [
        (spec.name, getattr(settings, opener.prefix_setting), opener.suffix)
        for spec in all_specs()
        for opener in spec.openers
        if chained is None or opener.chained == chained
    ]
