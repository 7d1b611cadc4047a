"""The API's JSON parser: DRF's, with a depth limit, a size limit and UTF-8 only.

DRF's ``JSONParser`` hands the stream to ``json.load``, which recurses per bracket
(4,000 ``[`` raised ``RecursionError``, an HTML 500) and reads any length (DRF reads
the WSGI stream directly, so ``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies). This one
reads at most the limit, measures the depth without recursing
(``helpdesk_connectors.wire``), and answers 400/413 in the error envelope.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from helpdesk_connectors.wire import BodyRejected, json_loads_bounded


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "body_too_large"


def body_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = body_limit()
        if stream is None:
            raw = b""
        elif limit is None:
            raw = stream.read()
        else:
            raw = stream.read(limit + 1)
            if len(raw) > limit:
                raise PayloadTooLarge()
        try:
            return json_loads_bounded(raw)
        except BodyRejected as exc:
            raise exceptions.ParseError(exc.message, code=exc.code) from None
