"""A file server on 127.0.0.1 for download tests: answers Range requests (206) as Zenodo does, logs every request,
can break a transfer after a given number of bytes (the connection closes mid-file), and can answer a file's
first request with other bytes (a transfer that arrives damaged)."""

import http.server
import re
import threading


class FileServer:
    """`files`: {url path without the leading "/": bytes}, changeable while it serves. `cut_after`: {path: n} sends
    the headers of the whole answer, then only n bytes, then closes (once per entry). `once`: {path: bytes} served
    instead of the file for its next request only. `requests`: [(path, Range header or None)]."""

    def __init__(self, files):
        self.files = dict(files)
        self.cut_after = {}
        self.once = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip("/").split("?")[0]
                byte_range = self.headers.get("Range")
                server.requests.append((path, byte_range))
                data = server.once.pop(path, None) or server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", byte_range or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_after.pop(path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.close_connection = True

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def paths_requested(self):
        return [path for path, _ in self.requests]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
