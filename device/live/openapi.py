"""The OpenAPI 3.1 document `serve` answers at /openapi.json (validated in a test)."""

from __future__ import annotations

from typing import Any

from mnist_edge.device.data import examples

_READING = {"type": "object", "properties": {
    "file": {"type": ["string", "null"]}, "digit": {"type": ["integer", "null"]},
    "confidence": {"type": ["number", "null"]}, "no_digit": {"type": ["number", "null"]},
    "none_reason": {"type": ["string", "null"]}, "model": {"type": "string"},
    "probabilities": {"type": ["array", "null"], "items": {"type": "number"}}}}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",  # 3.1: JSON Schema types, e.g. ["string", "null"] (3.0 has no such form)
    "info": {"title": "mnist-edge serve", "version": "1"},
    # The token, when the server has one: as a bearer token or ?token=. /healthz (status
    # only) and this document need none.
    "components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "query": {"type": "apiKey", "in": "query", "name": "token"}}},
    "security": [{"bearer": []}, {"query": []}],
    "paths": {
        "/api/classify": {"post": {
            "summary": "Classify an uploaded image (raw body or multipart 'file')",
            "parameters": [{"name": "multi", "in": "query", "schema": {"type": "boolean"}},
                           {"name": "crop", "in": "query", "schema": {"type": "boolean"},
                            "description": "add `crop`: the 28x28 the model saw, a PNG data URL"},
                           {"name": "top", "in": "query", "schema": {"type": "integer"}}],
            "requestBody": {"content": {"image/*": {}, "multipart/form-data": {}}},
            "responses": {"200": {"description": "the reading",
                                  "content": {"application/json": {"schema": _READING}}},
                          "400": {"description": "not a readable image"},
                          "401": {"description": "token missing"},
                          "413": {"description": "upload too large"},
                          "503": {"description": "busy: as many images as allowed are being "
                                                 "decoded; retry after Retry-After seconds"}}}},
        "/api/latest": {"get": {"summary": "The last camera frame's reading",
                                "responses": {"200": {"description": "reading"}}}},
        "/api/correct": {"post": {
            "summary": "serve --collect: save a reading (its `example` id) as an example of "
                       "the right label, for `train --finetune`",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["example", "label"],
                "properties": {"example": {"type": "string"},
                               "label": {"type": "string", "enum": examples.LABELS}}}}}},
            "responses": {"200": {"description": "saved"}, "400": {"description": "bad body"},
                          "404": {"description": "collecting off, or the reading is gone"}}}},
        "/api/unsure": {"get": {
            "summary": "serve --collect: the readings the model was unsure of, waiting for a label",
            "responses": {"200": {"description": "{items: [{id, time, read, confidence, ...}], count}"},
                          "404": {"description": "collecting is off"}}}},
        "/api/unsure/{item}": {
            "parameters": [{"name": "item", "in": "path", "required": True,
                            "schema": {"type": "string"},
                            "description": "an item's id (with .png for its frame)"}],
            "get": {"summary": "The item's frame as PNG (?crop=1: the 28x28 the model saw)",
                    "parameters": [{"name": "crop", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"200": {"description": "image/png"},
                                  "404": {"description": "no such item"}}},
            "post": {"summary": "File the item as an example of a label (as `collect` saves)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["label"],
                         "properties": {"label": {"type": "string", "enum": examples.LABELS}}}}}},
                     "responses": {"200": {"description": "saved"}, "400": {"description": "bad body"},
                                   "404": {"description": "no such item"}}},
            "delete": {"summary": "Drop the item",
                       "responses": {"200": {"description": "dropped"},
                                     "404": {"description": "no such item"}}}},
        "/api/history": {"get": {
            "summary": "The kept readings (camera and uploads), oldest first",
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "string"},
                 "description": "a time ago (90s, 30m, 1h, 2d, 1w) or an ISO date/time"},
                {"name": "until", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1},
                 "description": "only the newest N"},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "responses": {"200": {"description": "{readings: [...], count} or CSV"},
                          "400": {"description": "a bad parameter"},
                          "404": {"description": "serve --no-history"}}}},
        "/api/events": {"get": {"summary": "Server-sent events, one per change of reading",
                                "responses": {"200": {"description": "text/event-stream"}}}},
        "/api/stream.mjpg": {"get": {"summary": "Annotated MJPEG stream",
                                     "responses": {"200": {"description": "multipart JPEG"}}}},
        "/healthz": {"get": {"summary": "ok or degraded; with the token also the camera's "
                                        "error, the model's SHA-256 and the uptime",
                             "security": [],
                             "responses": {"200": {"description": "ok"},
                                           "503": {"description": "degraded: the camera is down"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text"}}}},
    },
}

