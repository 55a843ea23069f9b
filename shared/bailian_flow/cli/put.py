"""`bailian-flow put PATH`: a dataset into the configured bucket (local or cloud), sidecar first; prints its run."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import click

from bailian_flow.cli._api import Api, check_url
from bailian_flow.cli._app import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    json_option,
    print_json,
    verbose_option,
)
from bailian_flow.cli._settings import parse_settings, with_settings_options
from bailian_flow.local.profile import Profile, load_profile

SIDECAR_SUFFIX = ".flow.yaml"
DEPLOY_SUFFIX = ".deploy.yaml"
PART_SIZE = 8 << 20  # above this a multipart upload: constant memory, and a failed part is retried alone
DATASETS_PREFIX = "datasets/"
TERMINAL = frozenset({"DONE", "FAILED", "CANCELED"})
# A folder name as one key segment: characters OSS paths and the pipeline's key checks take as they are.
_UNSAFE_SEGMENT = re.compile(r"[^\w.-]+")


def default_key(path: Path) -> str:
    """`datasets/<folder>/<file name>`: files of one name from different folders (samples/sft/train.jsonl,
    samples/dpo/train.jsonl) land apart instead of the second overwriting the first."""
    folder = _UNSAFE_SEGMENT.sub("-", path.resolve().parent.name).strip("-.")
    return f"{DATASETS_PREFIX}{folder}/{path.name}" if folder else f"{DATASETS_PREFIX}{path.name}"


def oss_client(profile: Profile) -> Any:
    import alibabacloud_oss_v2 as oss

    if not profile.access_key_id or not profile.access_key_secret:
        raise CliError(
            "no OSS credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
            "or start `bailian-flow dev`",
            EXIT_UNREACHABLE,
        )
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        profile.access_key_id, profile.access_key_secret
    )
    config.region = profile.oss_region
    if profile.oss_endpoint:
        config.endpoint = check_url(profile.oss_endpoint, "the OSS endpoint (BAILIAN_FLOW_OSS_ENDPOINT)")
        if profile.oss_endpoint.startswith("http://"):
            config.disable_ssl = True
    config.use_path_style = profile.path_style
    return oss.Client(config)


def _normal_etag(etag: str | None) -> str:
    return (etag or "").strip('"').upper()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--key",
    help="Object key [default: datasets/<folder name>/<file name>; deployments/<name> for a .deploy.yaml marker; "
    "datasets/<folder name>/<stem>.zip for a VL JSONL naming local images, packed].",
)
@with_settings_options
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the run to appear (0: do not look for it).",
)
@click.option("--force", is_flag=True, help="Overwrite the object even while a run of it is unfinished.")
@json_option
@verbose_option
def put(
    path: Path,
    key: str | None,
    settings_file: Path | None,
    assignments: tuple[str, ...],
    wait: float,
    force: bool,
    as_json: bool,
) -> int:
    """Upload a dataset into the bucket (the local stack's, or BAILIAN_FLOW_BUCKET at BAILIAN_FLOW_OSS_ENDPOINT)
    and print the run it started.

    Settings given with --settings or --set are uploaded first, as the sidecar KEY.flow.yaml, so the run sees them.
    The key keeps the file's folder name (samples/dpo/train.jsonl → datasets/dpo/train.jsonl). An object whose
    run has not finished is not overwritten (that would supersede the run) unless --force is given.

    \b
    Examples:
      bailian-flow put train.jsonl
      bailian-flow put train.jsonl --key datasets/support/train.jsonl --set model=qwen3-14b
      bailian-flow put train.jsonl --set hyper_parameters.n_epochs=2
      bailian-flow put questions.jsonl --key batches/team/questions.jsonl   # a batch inference input
      bailian-flow put effect.zip --set model=wan2.6-i2v --set hyper_parameters.batch_size=2 \\
          --set hyper_parameters.n_epochs=10                                   # a Wan video fine-tune
      bailian-flow put images.jsonl --set model=qwen3-vl-8b-instruct         # VL: local images packed into a zip
      bailian-flow put qwen-flash.deploy.yaml                                 # a base-model deployment
    """
    import tempfile

    settings = parse_settings(settings_file, assignments)
    profile, _ = load_profile()
    with tempfile.TemporaryDirectory(prefix="bailian-flow-put-") as scratch:
        upload_path, default = _prepared(path, settings, Path(scratch))
        return _put(upload_path, key or default, settings, profile, wait=wait, force=force, as_json=as_json)


def _prepared(path: Path, settings: dict[str, Any] | None, scratch: Path) -> tuple[Path, str]:
    """The file to upload and its default key: a marker under its prefix; a VL JSONL naming local images packed
    into the zip the VL docs describe (the images travel inside it, so no 48-hour temporary URL can expire
    before the run reads them)."""
    from bailian_flow.validate._errors import DatasetError
    from bailian_flow.validate._media_entry import _looks_vl
    from bailian_flow.validate._vl import is_vl_model, validate_vl_jsonl
    from bailian_flow.validate._vlpack import pack_vl_jsonl

    if path.name.endswith(DEPLOY_SUFFIX):
        return path, f"deployments/{path.name}"
    model = (settings or {}).get("model")
    if path.suffix.lower() != ".jsonl" or not (is_vl_model(model) or _looks_vl(path)):
        return path, default_key(path)
    try:
        local = validate_vl_jsonl(path, model=model).local_images
        if not local:
            raise CliError(
                f"{path.name} names its images by URL only: upload the images next to it and name them by path, "
                "so put can pack them (a URL-only VL JSONL is not a media run yet)",
                EXIT_INVALID,
            )
        packed = scratch / f"{path.stem}.zip"
        result = pack_vl_jsonl(path, packed, model=model)
    except DatasetError as exc:
        where = f" line {exc.line}" if exc.line else ""
        field = f", {exc.field}" if exc.field else ""
        raise CliError(f"{exc.object_name}{where}{field}: {exc.reason}", EXIT_INVALID) from None
    click.echo(
        f"packed {result.records} record(s) and {result.images} local image(s) into {packed.name} "
        f"({result.bytes:,} bytes): the images travel in the zip, so the run has no 48-hour URL deadline",
        err=True,
    )
    return packed, default_key(path.with_name(packed.name))


def _put(
    path: Path, key: str, settings: dict[str, Any] | None, profile: Profile, *, wait: float, force: bool, as_json: bool
) -> int:
    import alibabacloud_oss_v2 as oss
    import yaml

    if key.startswith("/") or not key.strip():
        raise CliError(f"--key {key!r}: an object key has no leading slash", EXIT_INVALID)
    client = oss_client(profile)
    if not force:
        _refuse_open_run(client, profile, key)
    try:
        if settings is not None:
            sidecar = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True).encode()
            client.put_object(oss.PutObjectRequest(bucket=profile.bucket, key=key + SIDECAR_SUFFIX, body=sidecar))
            click.echo(f"settings → oss://{profile.bucket}/{key}{SIDECAR_SUFFIX}", err=True)
        etag = _upload(client, profile.bucket, key, path, show_progress=not as_json)
    except oss.exceptions.BaseError as exc:
        raise CliError(f"upload to oss://{profile.bucket}/{key} failed: {oss_reason(exc)}", EXIT_UNREACHABLE) from None
    click.echo(f"uploaded {path} → oss://{profile.bucket}/{key}", err=True)
    if wait == 0:
        if as_json:
            print_json({"bucket": profile.bucket, "key": key, "etag": etag, "run": None})
        return EXIT_OK
    run = _find_run(Api.for_profile(profile), key, etag, wait)
    if as_json:
        print_json({"bucket": profile.bucket, "key": key, "etag": etag, "run": run})
    elif run is not None:
        click.echo(run["run_id"])
        if run["stage"] == "FAILED":
            from bailian_flow.cli._run_view import error_line

            click.echo(f"run {run['run_id']} FAILED: {error_line(run.get('error'))}", err=True)
        else:
            click.echo(f"run {run['run_id']} is {run['stage']}: bailian-flow runs watch {run['run_id']}", err=True)
    if run is None:
        click.echo(f"bailian-flow: no run appeared for {key} within {wait:g} s", err=True)
        return EXIT_INVALID
    return EXIT_OK


def open_run_of(client: Any, profile: Profile, key: str) -> dict[str, Any] | None:
    """The unfinished run of the object now at `key`, if any: its run id derives from (bucket, key, ETag)
    (`run_id_for`), so one HEAD and one GET find it, however many runs there are."""
    import alibabacloud_oss_v2 as oss

    from bailian_flow.cli._app import EXIT_NOT_FOUND
    from bailian_flow.runlog import run_id_for

    try:
        head = client.head_object(oss.HeadObjectRequest(bucket=profile.bucket, key=key))
    except oss.exceptions.BaseError as exc:
        if status_of(exc) == 404:
            return None
        raise CliError(f"cannot read oss://{profile.bucket}/{key}: {oss_reason(exc)}", EXIT_UNREACHABLE) from None
    run_id = run_id_for(profile.bucket, key, _normal_etag(head.etag))
    try:
        run: dict[str, Any] = Api.for_profile(profile).get(f"/runs/{run_id}")["run"]
    except CliError as exc:
        if exc.exit_code == EXIT_NOT_FOUND:
            return None
        raise
    return None if run.get("stage") in TERMINAL else run


def _refuse_open_run(client: Any, profile: Profile, key: str) -> None:
    try:
        run = open_run_of(client, profile, key)
    except CliError as exc:
        # No API to ask (a bucket used without the webhook function): say so, and upload as asked.
        click.echo(f"bailian-flow: not checked for an unfinished run of {key}: {exc.message}", err=True)
        return
    if run is not None:
        raise CliError(
            f"oss://{profile.bucket}/{key} has an unfinished run {run['run_id']} ({run.get('stage')}); overwriting "
            "it would supersede that run: wait for it (bailian-flow runs watch "
            f"{run['run_id']}), upload elsewhere with --key, or overwrite anyway with --force",
            EXIT_INVALID,
        )


def status_of(exc: Exception) -> int | None:
    unwrap = getattr(exc, "unwrap", None)
    inner = unwrap() if callable(unwrap) else exc
    status = getattr(inner, "status_code", None)
    return status if isinstance(status, int) else None


def oss_reason(exc: Exception) -> str:
    # The SDK's messages span many lines (request id, ec, ...); the first says what happened.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _upload(client: Any, bucket: str, key: str, path: Path, *, show_progress: bool) -> str:
    import alibabacloud_oss_v2 as oss
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    size = path.stat().st_size
    with Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task(path.name, total=size)

        def advance(increment: int, transferred: int, total: int) -> None:
            progress.update(task, completed=transferred)

        request = oss.PutObjectRequest(bucket=bucket, key=key, progress_fn=advance)
        if size <= PART_SIZE:
            with path.open("rb") as body:
                request.body = body
                result = client.put_object(request)
        else:
            result = client.uploader(part_size=PART_SIZE).upload_file(request, str(path))
    return _normal_etag(result.etag)


def _find_run(api: Api, key: str, etag: str, wait: float) -> dict[str, Any] | None:
    """The run of this very upload: same key and same ETag (an older run of the key does not count)."""
    deadline = time.monotonic() + wait
    while True:
        for run in api.get("/runs", limit=50).get("runs") or []:
            source = run.get("source") or {}
            if source.get("key") == key and (not source.get("etag") or _normal_etag(source.get("etag")) == etag):
                found: dict[str, Any] = run
                return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.3)
