"""A simulated pigpiod: the board behind pigpiod's TCP protocol, a thread per connection.

The real `pigpio` client opens two connections per `pigpio.pi()`: one for commands, and
one that it turns into a notification stream with NOIB; gpiozero's PiGPIOFactory is a
`pigpio.pi()` underneath. Notification reports are written by a per-connection writer
thread so that the board never blocks on a socket while holding its lock.

Fault injection: `drop_connections()` closes every client socket at once (waves keep
playing, as on a Pi whose client died); `reply_delay_s` holds each reply back (wall time).
Under a real or scaled clock a ticker thread brings the board up to the clock every few
milliseconds, so the watchdog and waves advance while nobody talks to the board.
"""
from __future__ import annotations

import queue
import socket
import threading
import time

from hw import pigpio_limits as L

from . import protocol
from .board import SimBoard


class _Connection:
    """One client socket: reads requests, answers them, or streams notifications."""

    def __init__(self, server: "SimServer", sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.notify_handle: int | None = None
        self._reports: queue.Queue[bytes | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name="sim-pigpiod-conn")

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _recv_exact(self, n: int) -> bytes | None:
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self.sock.recv(n - got)
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _serve(self) -> None:
        board = self.server.board
        try:
            while True:
                head = self._recv_exact(16)
                if head is None:
                    break
                cmd, p1, p2, p3 = protocol.REQUEST.unpack(head)
                ext = b""
                if p3:
                    if p3 >= L.PI_CMD_MAX_EXTENSION:
                        break  # pigpiod drops a connection whose extension is too large
                    ext = self._recv_exact(p3)
                    if ext is None:
                        break
                if cmd == protocol.NOIB:
                    reply = self._open_notify(board, p1, p2)
                else:
                    reply = protocol.execute(board, cmd, p1, p2, ext)
                delay = self.server.reply_delay_s
                if delay > 0:
                    time.sleep(delay)
                try:
                    self.sock.sendall(reply)
                except OSError:
                    break
        finally:
            self._finish()

    def _open_notify(self, board: SimBoard, p1: int, p2: int) -> bytes:
        try:
            handle = board.notify_open(self._reports.put)
        except protocol.PigpioError as e:
            return protocol.REPLY.pack(protocol.NOIB, p1, p2, e.code)
        self.notify_handle = handle
        self._writer = threading.Thread(target=self._write_reports, daemon=True,
                                        name="sim-pigpiod-notify")
        self._writer.start()
        return protocol.REPLY.pack(protocol.NOIB, p1, p2, handle)

    def _write_reports(self) -> None:
        while True:
            report = self._reports.get()
            if report is None:
                return
            batch = [report]
            while len(batch) < 256:  # a burst of edges goes out in one write
                try:
                    more = self._reports.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._send(b"".join(batch))
                    return
                batch.append(more)
            if not self._send(b"".join(batch)):
                return

    def _send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _finish(self) -> None:
        if self.notify_handle is not None:
            try:
                self.server.board.notify_close(self.notify_handle)
            except protocol.PigpioError:
                pass  # already closed by NC
        self._reports.put(None)
        self.close()
        self.server._forget(self)


class SimServer:
    """pigpiod's protocol on `host:port` (port 0: a free port, see `.port`)."""

    def __init__(self, board: SimBoard, host: str = "127.0.0.1", port: int = 8888,
                 tick_s: float = 0.002) -> None:
        self.board = board
        self.host = host
        self._requested_port = port
        self.port = port
        self.reply_delay_s = 0.0
        self.tick_s = tick_s
        self._listener: socket.socket | None = None
        self._conns: set[_Connection] = set()
        self._conns_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Listen and serve in background threads (returns at once)."""
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((self.host, self._requested_port))
        lst.listen(16)
        self.port = lst.getsockname()[1]
        self._listener = lst
        self._stop.clear()
        accept = threading.Thread(target=self._accept, daemon=True, name="sim-pigpiod-accept")
        accept.start()
        self._threads.append(accept)
        if not getattr(self.board.clock, "virtual", False):
            ticker = threading.Thread(target=self._tick, daemon=True, name="sim-board-ticker")
            ticker.start()
            self._threads.append(ticker)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock)
            with self._conns_lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
            conn.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.board.sync()

    def _forget(self, conn: _Connection) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def drop_connections(self) -> None:
        """Fault injection: every client socket closes now; the board plays on."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            c.close()

    def connection_count(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def stop(self) -> None:
        """Stop listening, close every connection, stop the ticker."""
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        self.drop_connections()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

    def __enter__(self) -> "SimServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
