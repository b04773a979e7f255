"""The partition checker (jepsen.py) on made-up histories: each kind of
violation it exists for is reported, and a clean history passes."""
from jepsen import History, check


def history(acked=(), read=(), committed=()):
    h = History()
    h.acked = dict(acked)
    h.read = list(read)
    h.committed = list(committed)
    return h


FINAL = {0: {0: "0:0", 1: "1:0", 2: "0:1"}, 1: {0: "0:2"}}
REPLICAS = {0: {0: dict(FINAL[0]), 1: dict(FINAL[0])}, 1: {0: dict(FINAL[1])}}


def test_a_clean_history_passes():
    h = history(acked={"0:0": (0, 0), "0:1": (0, 2), "1:0": (0, 1)}, read=[(0, 1, "1:0")],
                committed=[(1, {0: 1}), (2, {0: 3})])
    assert check(h, FINAL, REPLICAS) == []


def test_each_violation_is_reported():
    cases = {
        "lost": (history(acked={"0:9": (0, 3)}), FINAL, REPLICAS),
        "lost: 0:1": (history(acked={"0:1": (0, 1)}), FINAL, REPLICAS),  # at another offset
        "duplicated": (history(), {0: {0: "0:0", 1: "0:0"}}, {}),
        "reordered": (history(), {0: {0: "0:1", 1: "0:0"}}, {}),
        "diverged": (history(), FINAL, {0: {0: dict(FINAL[0]), 1: {0: "0:0", 1: "9:9", 2: "0:1"}}}),
        "phantom read": (history(read=[(0, 3, "0:5")]), FINAL, REPLICAS),
        "offset moved back": (history(committed=[(1, {0: 3}), (2, {0: 1})]), FINAL, REPLICAS),
    }
    for kind, (h, final, replicas) in cases.items():
        problems = check(h, final, replicas)
        assert any(p.startswith(kind) for p in problems), (kind, problems)


def test_an_acknowledgement_without_an_offset_is_checked_for_presence():
    assert check(history(acked={"0:1": (0, None)}), FINAL, REPLICAS) == []
    assert check(history(acked={"0:7": (0, None)}), FINAL, REPLICAS)[0].startswith("lost")


def test_a_duplicate_says_whether_the_producer_had_bumped_its_epoch():
    final = {0: {0: "0:0", 1: "0:1", 2: "0:1"}}
    bumped = {0: {0: (1, 0, 7), 1: (1, 0, 8), 2: (1, 1, 0)}}
    same = {0: {0: (1, 0, 7), 1: (1, 0, 8), 2: (1, 0, 9)}}
    [by_client] = [p for p in check(history(), final, {}, bumped) if p.startswith("duplicated")]
    assert "epoch 0 seq 8, then producer 1 epoch 1 seq 0: re-sent as new after a producer-epoch bump" in by_client
    [by_broker] = [p for p in check(history(), final, {}, same) if p.startswith("duplicated")]
    assert "epoch bump" not in by_broker and "epoch 0 seq 9" in by_broker
    [unknown] = [p for p in check(history(), final, {}) if p.startswith("duplicated")]
    assert unknown == "duplicated: 0:1 at (0, 1) and (0, 2)"


def test_batch_headers_of_a_dump_give_each_offset_its_producer():
    from jepsen import BATCH
    line = ("baseOffset: 4 lastOffset: 6 count: 3 baseSequence: 10 lastSequence: 12 producerId: 3 "
            "producerEpoch: 2 partitionLeaderEpoch: 0 isTransactional: false")
    assert BATCH.findall(line) == [("4", "6", "10", "3", "2")]
