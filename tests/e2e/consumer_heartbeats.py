"""ConsumerGroupHeartbeat v1 (KIP-848) as raw bytes, for the tests that
hold gregor's error codes against Kafka 4's: a request from its fields,
and the error code and member epoch of an answer."""
import struct

from controller_requests import _header, read_frame

CONSUMER_GROUP_HEARTBEAT = 68


def _uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(s):
    """A compact nullable string."""
    return b"\x00" if s is None else _uvarint(len(s.encode()) + 1) + s.encode()


def _array(items, encode):
    """A compact nullable array."""
    return b"\x00" if items is None else _uvarint(len(items) + 1) + b"".join(encode(i) for i in items)


def heartbeat(correlation_id, group, member, epoch, *, instance=None, rack=None, rebalance_timeout=-1,
              topics=None, regex=None, assignor=None, owned=None):
    """A ConsumerGroupHeartbeat v1; `owned`: [(topic id bytes, [partitions])]."""
    def topic_partitions(tp):
        topic_id, partitions = tp
        return topic_id + _array(partitions, lambda p: struct.pack(">i", p)) + b"\x00"

    body = (_string(group) + _string(member) + struct.pack(">i", epoch) + _string(instance) + _string(rack)
            + struct.pack(">i", rebalance_timeout) + _array(topics, _string) + _string(regex) + _string(assignor)
            + _array(owned, topic_partitions) + b"\x00")
    return _header(CONSUMER_GROUP_HEARTBEAT, 1, correlation_id, b"heartbeats") + body


def _read_uvarint(data, at):
    n = shift = 0
    while True:
        b = data[at]
        at += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, at
        shift += 7


def exchange(s, request):
    """Sends `request` on `s`; the answer's (error code, member epoch)."""
    s.sendall(struct.pack(">i", len(request)) + request)
    data = read_frame(s)
    at = 4 + 1 + 4  # correlation id, header tags, throttle time
    error = struct.unpack(">h", data[at:at + 2])[0]
    at += 2
    for _ in range(2):  # error message, member id
        length, at = _read_uvarint(data, at)
        at += max(length - 1, 0)
    return error, struct.unpack(">i", data[at:at + 4])[0]
