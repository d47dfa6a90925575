"""TF Serving's REST API for the development server, on `http.server`.

    POST /v1/models/NAME[/versions/N]:predict    {"signature_name": ..., "instances": [...]} or {"inputs": ...}
    GET  /v1/models/NAME[/versions/N]            {"model_version_status": [...]}
    GET  /v1/models/NAME[/versions/N]/metadata   {"model_spec": {...}, "metadata": {"signature_def": {...}}}

Row format (`instances`) answers {"predictions": [...]}: per row, a dict of the outputs (the value alone when the
signature has one output); columnar format (`inputs`) answers {"outputs": {...}} (the value alone for one
output). Errors answer {"error": message} with 400 (INVALID_ARGUMENT, malformed JSON or base64), 404 (NOT_FOUND,
unknown path), 405 (wrong method), 411 (no Content-Length), 413 (body over the cap, refused from its
Content-Length before it is read; more rows than --max-batch), 414 (a request line over 64 kB), 501 (:classify,
:regress), 503 (more than `max_connections` connections at once: the connection is answered, not reset) or 500
(INTERNAL). Connections wait in a listen backlog of LISTEN_BACKLOG until accepted. Access logs go to the
`logging` module at DEBUG level.
"""

import json
import logging
import re
import socket
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from audiocaps_tf.serving.model_manager import DEFAULT_SIGNATURE
from audiocaps_tf.serving.tensors import (
    INVALID_ARGUMENT,
    ServingError,
    inputs_to_arrays,
    instances_to_arrays,
    metadata_to_json,
    outputs_to_columns,
    outputs_to_rows,
    proto_to_json,
)

logger = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?"
)
_POST_ACTIONS = (":predict", ":classify", ":regress")
# A body refused as too large is still read and thrown away up to this size, so that a client that sends it
# whole before reading the answer gets the 413 rather than a reset connection.
_DISCARD_LIMIT = 256 << 20
DEFAULT_MAX_CONNECTIONS = 64  # connections served at once; more are answered 503
LISTEN_BACKLOG = 1024  # connections the kernel queues before they are accepted (socketserver's default: 5)


class HttpError(Exception):
    """An HTTP-level refusal (unknown path, wrong method, body too large...) with its status."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class RestServer(ThreadingHTTPServer):
    """A threading HTTP server answering TF Serving's REST API from a ModelManager: one thread per connection, up
    to `max_connections` at once; a connection past that gets a 503 JSON answer and is closed."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address, manager, max_request_bytes, max_connections=DEFAULT_MAX_CONNECTIONS):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.manager = manager
        self.max_request_bytes = max_request_bytes
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, RestHandler)

    def process_request(self, request, client_address):
        admitted = self._slots.acquire(blocking=False)
        threading.Thread(target=self._serve_connection, args=(request, client_address, admitted), daemon=True,
                         name="rest-connection").start()

    def _serve_connection(self, request, client_address, admitted):
        try:
            (RestHandler if admitted else BusyHandler)(request, client_address, self)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            if admitted:
                self._slots.release()
            self.shutdown_request(request)


class RestHandler(BaseHTTPRequestHandler):
    """One connection: routes each request and answers JSON."""

    protocol_version = "HTTP/1.1"
    server_version = "audiocaps-tf-dev-server"
    timeout = 300  # seconds a connection may stay idle or stall in the middle of a body

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def do_PUT(self):
        self._answer()

    def do_DELETE(self):
        self._answer()

    def do_PATCH(self):
        self._answer()

    def log_message(self, format, *args):  # noqa: A002  (the signature of BaseHTTPRequestHandler)
        logger.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a request line over 64 kB: 414, a malformed request: 400) as JSON too."""
        self._body_read = True  # nothing of a body is read or expected after such a request line
        self.close_connection = True
        self._send_json(code, {"error": message or HTTPStatus(code).phrase})

    # --- routing ---

    def _answer(self):
        self._body_read = False
        headers = ()
        try:
            status, answer = HTTPStatus.OK, self._route()
        except HttpError as error:
            status, answer, headers = error.status, {"error": error.message}, error.headers
        except ServingError as error:
            status, answer = error.http_status, {"error": error.message}
        except Exception as error:
            logger.exception("%s %s failed", self.command, self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            answer = {"error": f"internal error: {type(error).__name__}: {error}"}
        self._send_json(status, answer, headers)

    def _route(self):
        path = urllib.parse.urlsplit(self.path).path
        match = _ROUTE.fullmatch(path)
        if match is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"Malformed request: {self.command} {path}")
        action = match["action"]
        method = "POST" if action in _POST_ACTIONS else "GET"
        if self.command != method:
            message = f"{self.command} is not allowed on {path}, only {method}"
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, message, [("Allow", method)])
        manager = self.server.manager
        name = urllib.parse.unquote(match["name"])
        version = int(match["version"]) if match["version"] else None
        label = urllib.parse.unquote(match["label"]) if match["label"] else None
        if action == ":predict":
            return self._predict(manager.get(version, name, label))
        if action in _POST_ACTIONS:
            message = f"{action[1:]} is not supported by the development server: use :predict"
            raise ServingError("UNIMPLEMENTED", message)
        if action == "/metadata":
            return metadata_to_json(manager.get(version, name, label).metadata_response())
        if label:
            manager.get(version, name, label)  # refuses the label
        return proto_to_json(manager.status_response(name, version))

    def _predict(self, served):
        body = self._read_json()
        if not isinstance(body, dict):
            raise ServingError(INVALID_ARGUMENT, "the request body must be a JSON object")
        signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature_name, str):
            raise ServingError(INVALID_ARGUMENT, "'signature_name' must be a string")
        if "instances" in body and "inputs" in body:
            raise ServingError(
                INVALID_ARGUMENT,
                "Not both 'instances' and 'inputs' can be specified: "
                "'instances' is the row format, 'inputs' the columnar one",
            )
        specs = served.input_specs(signature_name)
        if "instances" in body:
            outputs = served.predict(signature_name, instances_to_arrays(body["instances"], specs))
            return {"predictions": outputs_to_rows(outputs)}
        if "inputs" in body:
            outputs = served.predict(signature_name, inputs_to_arrays(body["inputs"], specs))
            return {"outputs": outputs_to_columns(outputs)}
        raise ServingError(INVALID_ARGUMENT, "Missing 'inputs' or 'instances' key")

    # --- body in, JSON out ---

    def _content_length(self):
        """The declared body size (0 without a Content-Length); None when chunked or not a number."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        return length if length >= 0 else None

    def _read_json(self):
        """The request body parsed as JSON, once its Content-Length is known to be within the cap."""
        length = self._content_length()
        if length is None:
            message = "the request body needs a valid Content-Length header (no chunks)"
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, message)
        limit = self.server.max_request_bytes
        if length > limit:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request body of {length} bytes is over the limit of {limit} bytes (--max-request-mb)",
            )
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) < length:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"the request body ended after {len(body)} of {length} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"JSON Parse error: {error}") from None

    def _send_json(self, status, answer, headers=()):
        body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        unread = 0 if self._body_read else self._content_length()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for header in headers:
            self.send_header(*header)
        if unread != 0:  # a body left unread (or of unknown size) would be taken for the next request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if unread and unread <= _DISCARD_LIMIT:
            self._discard(unread)

    def _discard(self, size):
        try:
            while size > 0:
                chunk = self.rfile.read(min(size, 1 << 20))
                if not chunk:
                    return
                size -= len(chunk)
        except OSError:
            pass  # the client went away: nothing left to do


class BusyHandler(RestHandler):
    """A connection past the server's `max_connections`: its request is answered 503 (UNAVAILABLE), in JSON."""

    def handle(self):
        self.close_connection = True
        self._body_read = False
        self.raw_requestline = self.rfile.readline(65537)
        if self.raw_requestline and self.parse_request():
            message = (f"the server is serving {self.server.max_connections} connections already "
                       "(--rest-max-connections): try again")
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": message})
