"""A TCP proxy that can play "the server is gone": for outage tests against a shared server
that must not be stopped (PostgreSQL on this machine serves other people's tests too).

    proxy = ProxyProcess(("127.0.0.1", 5432))   # point the service at proxy.port
    proxy.cut()       # every open connection reset, new ones reset as soon as accepted
    proxy.restore()   # forward again
    proxy.swallow()   # bytes from clients vanish (sent, never arrive); restore() resets those

Seen from the client, ``cut()`` is what a stopped server looks like: established connections
die (reset) and new ones fail before the server's first byte.

``ProxyProcess`` runs the proxy in a process of its own: inside a busy test process (gateway,
HTTP clients, eventlet) every round trip to the database waited for the hub, and a batch of
a hundred statements took seconds. ``TcpProxy`` is the proxy itself, in plain threads.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) instead of a FIN, as a dead peer would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        # Wakes a thread blocked in recv() on this socket (close() alone may not).
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._cut = False
        self._swallow = False
        self._damaged: set[Any] = set()  # pairs that lost bytes to swallow()
        self._closed = False
        self.forwarded = 0  # connections forwarded to the target
        self.refused = 0  # connections reset on arrival because the proxy was cut
        self.severed = 0  # open connections reset by cut()

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, set()
            self.severed += len(pairs)
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def swallow(self) -> None:
        """Drop what clients send from now on (what the server sends still arrives): e.g. a
        consumer's acks that were written but never reached the broker before a crash."""
        with self._lock:
            self._swallow = True

    def restore(self) -> None:
        with self._lock:
            self._cut = self._swallow = False
            damaged, self._damaged = self._damaged, set()
            self._pairs -= damaged
        for client, upstream in damaged:  # their byte streams have holes: end them
            _reset(client)
            _reset(upstream)

    def stop(self) -> None:
        self._closed = True
        self.cut()
        try:
            # Wakes the accept loop: a thread left in accept() on a closed socket keeps the
            # descriptor number in eventlet's hub (tests/conftest.py, _stale_listeners).
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
                # As libpq and PostgreSQL do: without it, Nagle and delayed ACKs hold small
                # messages back for tens of milliseconds at each hop.
                for sock in (client, upstream):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                _reset(client)
                continue
            pair = (client, upstream)
            with self._lock:
                refused = self._cut
                if not refused:
                    self._pairs.add(pair)
                    self.forwarded += 1
            if refused:
                self.refused += 1
                _reset(client)
                _reset(upstream)
                continue
            for src, dst in (pair, pair[::-1]):
                threading.Thread(
                    target=self._pump, args=(src, dst, pair), name="tcp-proxy-pump", daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: Any) -> None:
        from_client = src is pair[0]
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self._swallow:
                    with self._lock:
                        self._damaged.add(pair)
                    continue
                dst.sendall(data)
        except (OSError, EOFError):  # eventlet raises EOFError for a socket closed meanwhile
            pass
        # One side ended (or cut() reset both): end the other side too, once.
        with self._lock:
            mine = pair in self._pairs
            self._pairs.discard(pair)
        if mine:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def proxied_url(url: str, port: int) -> str:
    """``url`` (PostgreSQL, AMQP, …) with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}127.0.0.1:{port}"))


class ProxyProcess:
    """A :class:`TcpProxy` in a child process, driven over its stdin/stdout."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcp_proxy", f"{target[0]}:{target[1]}"],
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._read()["port"])

    def url(self, url: str) -> str:
        """``url`` pointed at this proxy instead."""
        return proxied_url(url, self.port)

    def cut(self) -> dict[str, int]:
        return self._command("cut")

    def restore(self) -> dict[str, int]:
        return self._command("restore")

    def swallow(self) -> dict[str, int]:
        return self._command("swallow")

    def stats(self) -> dict[str, int]:
        """forwarded, refused, severed, open (connections)."""
        return self._command("stats")

    def stop(self) -> None:
        if self._process.poll() is None:
            try:
                self._command("stop")
            except (OSError, ValueError):
                pass
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def _command(self, word: str) -> dict[str, int]:
        assert self._process.stdin is not None
        self._process.stdin.write(word + "\n")
        self._process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the proxy process ended")
        return json.loads(line)


def _serve(target: str) -> None:
    host, port = target.rsplit(":", 1)
    proxy = TcpProxy((host, int(port))).start()

    def say(**extra: Any) -> None:
        stats = {
            "forwarded": proxy.forwarded,
            "refused": proxy.refused,
            "severed": proxy.severed,
            "open": proxy.open_connections,
            **extra,
        }
        print(json.dumps(stats), flush=True)

    say(port=proxy.port)
    for line in sys.stdin:
        word = line.strip()
        if word == "cut":
            proxy.cut()
        elif word == "restore":
            proxy.restore()
        elif word == "swallow":
            proxy.swallow()
        elif word == "stop":
            proxy.stop()
            say()
            return
        say()
    proxy.stop()


if __name__ == "__main__":
    _serve(sys.argv[1])
