"""Reading a package upload: a multipart body whose first file part is the archive.

The size limit is enforced while the body streams in (and up front from ``Content-Length``),
so an oversized upload is refused without being buffered.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from cloaca.errors import ApiError

MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _too_large(limit: int) -> ApiError:
    return ApiError(
        f"upload larger than the server's limit of {limit} bytes",
        status=413,
        code="payload_too_large",
    )


async def read_upload(request: Request, limit: int) -> bytes:
    """The bytes of the first file in the multipart body of ``request``.

    Raises
    ------
    ApiError
        400 ``invalid_request`` (not multipart, no file, empty file), 413 ``payload_too_large``.
    """
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(
            "expected a multipart/form-data body with the package in a 'file' field",
            status=400,
            code="invalid_request",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + 64 * 1024:
        raise _too_large(limit)

    async def limited() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit + 64 * 1024:  # multipart framing on top of the file
                raise _too_large(limit)
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=4, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(
            f"malformed multipart body: {exc.message}", status=400, code="invalid_request"
        ) from exc
    try:
        upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise ApiError(
                "no file in the upload; send the package as the multipart field 'file'",
                status=400,
                code="invalid_request",
            )
        data = await upload.read()
    finally:
        await form.close()
    if not data:
        raise ApiError("the uploaded file is empty", status=400, code="invalid_request")
    if len(data) > limit:
        raise _too_large(limit)
    return data
