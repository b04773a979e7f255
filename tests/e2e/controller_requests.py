"""The controller's requests (LeaderAndIsr, UpdateMetadata, StopReplica)
as raw bytes, empty but well formed, for the tests that check a client is
refused them; and one request/answer exchange on a socket."""
import struct

LEADER_AND_ISR, STOP_REPLICA, UPDATE_METADATA = 4, 5, 6


def _header(api_key, version, correlation_id, client_id=b"intruder"):
    """A flexible request header (v2): key, version, correlation id,
    client id, no tagged fields."""
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id + b"\x00"


def leader_and_isr_v4(correlation_id, controller_epoch):
    """A LeaderAndIsr v4 with no partitions: controller id, controller
    epoch, broker epoch, no topic states, no live leaders, no tags."""
    body = struct.pack(">iiq", 0, controller_epoch, -1) + b"\x01" + b"\x01" + b"\x00"
    return _header(LEADER_AND_ISR, 4, correlation_id) + body


def update_metadata_v6(correlation_id, controller_epoch):
    """An UpdateMetadata v6 with no topics and no live brokers (which a
    broker that took it would believe: an empty cluster)."""
    body = struct.pack(">iiq", 0, controller_epoch, -1) + b"\x01" + b"\x01" + b"\x00"
    return _header(UPDATE_METADATA, 6, correlation_id) + body


def stop_replica_v3(correlation_id, controller_epoch):
    """A StopReplica v3 with no topics."""
    body = struct.pack(">iiq", 0, controller_epoch, -1) + b"\x01" + b"\x00"
    return _header(STOP_REPLICA, 3, correlation_id) + body


def recv_exactly(s, n):
    """`n` bytes from socket `s`; ConnectionError if it closes first."""
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return bytes(data)


def read_frame(s):
    """One size-prefixed Kafka frame from `s`, without its size."""
    size = struct.unpack(">i", recv_exactly(s, 4))[0]
    return recv_exactly(s, size)


def exchange(s, request):
    """Sends `request` on `s`; the answer's error code (after the
    correlation id and the flexible header's empty tagged fields)."""
    s.sendall(struct.pack(">i", len(request)) + request)
    response = read_frame(s)
    return struct.unpack(">h", response[5:7])[0]
