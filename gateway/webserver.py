"""nameko's web server with TCP_NODELAY on every connection.

eventlet's WSGI server writes a response's headers and body in separate sends; with Nagle's
algorithm the body then waits for the client's delayed ACK (up to 40 ms on Linux) — measured
here: 16 ms per /healthz and 70 ms per submission sequentially before, see docs/benchmarks.md.

Several gateway processes can listen on one port (``make run`` starts one per core): nameko's
``eventlet.listen`` sets SO_REUSEPORT, and the kernel spreads connections over the processes
(tests/service/test_gateway_shared_state.py checks it).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer


class NoDelayWebServer(WebServer):
    def process_request(self, sock: Any, address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(sock, address)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, *args: Any, **kwargs: Any) -> Any:
        server = super().get_wsgi_server(sock, wsgi_app, *args, **kwargs)
        # One access-log line per request costs more than a health check; the gateway counts
        # answers in buurtpeil_http_responses_total and logs errors itself.
        server.log = logging.getLogger("gateway.access")
        server.log_output = False
        return server


class NoDelayHttpHandler(HttpRequestHandler):
    server = NoDelayWebServer()


http = NoDelayHttpHandler.decorator
