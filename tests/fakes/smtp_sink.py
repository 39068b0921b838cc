"""An SMTP sink: a real SMTP server (RFC 5321 commands, dot-stuffing, multiple recipients)
that keeps every message it accepts in memory, for tests, benchmarks and ``make run``.

    sink = SmtpSink(); sink.start(); ... sink.messages  → [email.message.EmailMessage]
    python -m tests.fakes.smtp_sink --port 2525 [--http-port 8025]
        standalone: prints each message; with --http-port also a read-only mail-catcher API,
        GET /messages[?to=<address>] → [{"to", "subject", "text", "received"}] as JSON, the
        way ``make run`` reads verification codes and counts e-mailed notifications.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import socketserver
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 buurtpeil-smtp-sink ESMTP ready")
        sender, recipients = None, []
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("HELO", "EHLO"):
                self.reply("250-buurtpeil-smtp-sink" if verb == "EHLO" else "250 hello")
                if verb == "EHLO":
                    self.reply("250-8BITMIME")
                    self.reply("250 SMTPUTF8")
            elif verb == "MAIL":
                sender, recipients = line.split(":", 1)[1].strip().split()[0].strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                if sender is None:
                    self.reply("503 MAIL first")
                    continue
                recipients.append(line.split(":", 1)[1].strip().split()[0].strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                if not recipients:
                    self.reply("503 RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                self.server.accept(sender, recipients, self._read_data())
                sender, recipients = None, []
                self.reply("250 OK queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")

    def _read_data(self) -> bytes:
        lines = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if raw in (b".\r\n", b".\n", b""):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)  # undo dot-stuffing


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sink: SmtpSink):
        super().__init__(address, _Handler)
        self.sink = sink

    def accept(self, sender: str | None, recipients: list[str], data: bytes) -> None:
        message = email.message_from_bytes(data, policy=email.policy.default)
        with self.sink.lock:
            self.sink.received.append(Received(sender or "", recipients, message))
        if self.sink.echo:
            print(f"[smtp-sink] to {', '.join(recipients)}: {message['Subject']}", flush=True)


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


class _CatcherHandler(BaseHTTPRequestHandler):
    server: _CatcherServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if parts.path != "/messages":
            self._send(404, {"reason": "not found"})
            return
        wanted = parse_qs(parts.query).get("to", [None])[0]
        with self.server.sink.lock:
            received = list(enumerate(self.server.sink.received))
        self._send(
            200,
            [
                {
                    "index": i,
                    "to": r.recipients,
                    "subject": str(r.message["Subject"] or ""),
                    "text": _text_of(r.message),
                }
                for i, r in received
                if wanted is None or wanted in r.recipients
            ],
        )

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


class _CatcherServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sink: SmtpSink):
        super().__init__(address, _CatcherHandler)
        self.sink = sink


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False):
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.echo = echo
        self._server = _Server((host, port), self)
        self._catcher: _CatcherServer | None = None
        self.host, self.port = self._server.server_address[:2]

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received if address in r.recipients]

    def start(self) -> SmtpSink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def serve_http(self, port: int = 0) -> str:
        """Start the read-only mail-catcher API (GET /messages); returns its base URL."""
        self._catcher = _CatcherServer((self.host, port), self)
        threading.Thread(target=self._catcher.serve_forever, daemon=True).start()
        return f"http://{self.host}:{self._catcher.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._catcher is not None:
            self._catcher.shutdown()
            self._catcher.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.smtp_sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, help="also serve GET /messages on this port")
    args = parser.parse_args()
    sink = SmtpSink(args.host, args.port, echo=True)
    print(f"[smtp-sink] listening on {sink.url}", flush=True)
    if args.http_port:
        print(f"[smtp-sink] messages at {sink.serve_http(args.http_port)}/messages", flush=True)
    sink._server.serve_forever()


if __name__ == "__main__":
    main()
