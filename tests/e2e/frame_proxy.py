"""A TCP proxy to a broker that passes Kafka frames whole, for tests that
lose, hold or corrupt particular requests and answers."""
import socket
import threading


class FrameProxy:
    """Listens on `port` and connects each client to the broker at
    `target_port`. Every size-prefixed frame goes through `request(frame,
    conn)` (client → broker) or `response(frame, conn)` (broker → client),
    which return the frame to forward — possibly changed — or None to drop
    it; `conn` is a dict kept per client connection. The base forwards
    everything."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.lock = threading.Lock()
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def request(self, frame, conn):
        return frame

    def response(self, frame, conn):
        return frame

    def _accept(self):
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the broker is down: the client sees a closed connection
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            conn = {}
            threading.Thread(target=self._pump, args=(client, upstream, conn, self.request), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, conn, self.response), daemon=True).start()

    @staticmethod
    def _pump(src, dst, conn, judge):
        buffered = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buffered += data
                while len(buffered) >= 4:
                    size = int.from_bytes(buffered[:4], "big")
                    if len(buffered) < 4 + size:
                        break
                    frame, buffered = buffered[:4 + size], buffered[4 + size:]
                    forwarded = judge(frame, conn)
                    if forwarded is not None:
                        dst.sendall(forwarded)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_connections(self):
        """Closes every connection made so far (clients may connect again)."""
        with self.lock:
            doomed, self.sockets = self.sockets, []
        for s in doomed:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.listener.close()
        self.cut_connections()
