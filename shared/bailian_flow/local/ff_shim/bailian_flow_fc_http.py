"""functions-framework target: hands the request to the FC function the app was configured with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import flask


def fc_http(request: flask.Request) -> flask.Response:
    import flask

    from bailian_flow.local.http_trigger import CONFIG_KEY

    response: flask.Response = flask.current_app.config[CONFIG_KEY](request)
    return response
