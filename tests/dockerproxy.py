"""A UNIX-socket proxy in front of the Docker engine that a test can take away and bring
back, to simulate a daemon that is unreachable for a while; or that stalls: with
`stall_on` set, a request whose path contains it is taken and never answered (a daemon
that answers the ping and then hangs on a call)."""
import os
import socket
import threading


class DockerProxy:
    def __init__(self, path: str, upstream: str = "/var/run/docker.sock"):
        self.path, self.upstream = path, upstream
        self.listener = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stall_on: str | None = None
        self.stalled = threading.Event()   # set once a request was held
        self.gone = threading.Event()      # set by stop(): held requests are let go

    def start(self) -> "DockerProxy":
        self.gone = threading.Event()
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Daemon gone: no listener, every open connection cut."""
        self.gone.set()
        lst, self.listener = self.listener, None
        if lst is not None:
            lst.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, lst) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, up]
            for a, b, watch in ((client, up, True), (up, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, watch), daemon=True).start()

    def _holds(self, data: bytes) -> bool:
        """Whether `data` starts a request to hold (small requests arrive whole)."""
        line = data.split(b"\r\n", 1)[0].decode("latin-1", "replace").split(" ")
        return (self.stall_on is not None and len(line) == 3 and line[2].startswith("HTTP/")
                and self.stall_on in line[1])

    def _pipe(self, src, dst, watch: bool = False) -> None:
        try:
            while data := src.recv(65536):
                if watch and self._holds(data):
                    self.stalled.set()
                    self.gone.wait()   # taken and never answered, the connection kept open
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
