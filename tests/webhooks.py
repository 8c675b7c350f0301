"""A webhook receiver of the test's own on a free 127.0.0.1 port, which answers as its ``mode``
says: ``ok`` (204), ``error`` (500), ``garbage`` (bytes that are not HTTP), ``drip`` (a 200 one
byte a second, far slower than any budget) or ``refuse`` (nothing listens: connection refused).
It records every request it read in full and every alert it acknowledged."""

from __future__ import annotations

import json
import socket
import threading

from tests.brokers import free_port

GARBAGE = b"\x00\xff\xfeSSH-2.0-not-http\r\n\r\n"
DRIP = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 200 + b"\r\nContent-Length: 0\r\n\r\n"


class FlakyWebhook:
    def __init__(self, mode: str = "ok") -> None:
        self.port = free_port()
        self.mode = mode
        self.requests: list[tuple[dict[str, str], dict]] = []  # (headers, body), all modes
        self.acknowledged: list[str] = []  # alert ids answered 2xx
        self.drips_cut = 0  # drip answers the client hung up on before they were complete
        self.drips_finished = 0
        self.dripped = threading.Condition()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.set_mode(mode)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def set_mode(self, mode: str) -> None:
        """Switch the answer; ``refuse`` closes the port, any other mode listens again."""
        self.mode = mode
        if mode == "refuse":
            self._close_listener()
        elif self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
            self._listener = listener
            self._acceptor = self._start(self._accept, listener)

    def wait_for_drips(self, cut: int, timeout_s: float = 30.0) -> bool:
        with self.dripped:
            return self.dripped.wait_for(lambda: self.drips_cut >= cut, timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._close_listener()
        for thread in self._threads:
            thread.join(10)

    def _close_listener(self) -> None:
        """Stop listening for real: a bare close() leaves a thread blocked in accept() holding
        the port open, so shut it down first and wait for that thread."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
            self._acceptor.join(10)

    def _start(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            self._start(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            try:
                headers, body = _read_request(client)
            except (OSError, ValueError):
                return
            with self._lock:
                self.requests.append((headers, body))
            mode = self.mode
            if mode == "ok":
                with self._lock:
                    self.acknowledged.append(body.get("alert_id"))
                client.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            elif mode == "error":
                client.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            elif mode == "garbage":
                client.sendall(GARBAGE)
            elif mode == "drip":
                self._drip(client)

    def _drip(self, client: socket.socket) -> None:
        for i in range(len(DRIP)):
            if self._stop.wait(1.0):
                return
            try:
                client.sendall(DRIP[i : i + 1])
            except OSError:  # the client hung up before the answer was complete
                with self.dripped:
                    self.drips_cut += 1
                    self.dripped.notify_all()
                return
        with self.dripped:
            self.drips_finished += 1


def _read_request(client: socket.socket) -> tuple[dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            raise ValueError("connection closed before the headers ended")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            raise ValueError("connection closed before the body ended")
        body += chunk
    return headers, json.loads(body[:length])
