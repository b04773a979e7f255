"""Transactions v2 (KIP-890 part 2) with Kafka's Java producer 4.x: with
`transaction.version=2` the broker finalizes the feature in ApiVersions and
the client runs every transaction without AddPartitionsToTxn and
AddOffsetsToTxn (Produce v12 and TxnOffsetCommit v5 add the partitions at
the leader), and EndTxn v5 bumps its epoch at every end — which
DescribeTransactions shows. With `transaction.version=0` the same client
stays on v1: the epoch stays. Either way a read_committed consumer sees
exactly the committed records (tests/jvm/TransactionV2Check.java), and
librdkafka (which never reads the feature) is unaffected."""
import pytest

from conftest import Broker
from test_jvm import REASON, java_check
from test_transactions import create, read, transactional

TRANSACTIONS = 12
PER = 100


@pytest.fixture(params=[(0, True), (2, True), (2, False)], ids=["tv0", "tv2", "tv2-without-verification"])
def level_broker(tmp_path, request):
    """A broker of `transaction.version` 0 or 2 (at 2 also with
    `transaction.partition.verification.enable=false`: the implicit add
    happens anyway), and the level."""
    level, verification = request.param
    b = Broker(str(tmp_path), env={
        "GREGOR_TRANSACTION_VERSION": str(level),
        "GREGOR_TRANSACTION_PARTITION_VERIFICATION_ENABLE": str(verification).lower(),
    }).start()
    yield b, level
    b.stop()


@pytest.mark.skipif(REASON is not None, reason=f"JVM tests need Java and the Kafka jars: {REASON}")
def test_java_producer_transactions_under_the_broker_transaction_version(level_broker):
    broker, level = level_broker
    out = java_check("TransactionV2Check", broker.bootstrap, "tv", TRANSACTIONS, PER, timeout=300)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    committed = sum(PER for t in range(TRANSACTIONS) if t % 3 != 2)
    assert got["produced"] == str(TRANSACTIONS * PER)
    assert got["committed"] == str(committed)
    assert got["consumed"] == str(committed), got
    assert got["exact"] == "true", got
    # The last committed transaction's offset (TxnOffsetCommit v5 under v2).
    assert got["group-offset"] == got["group-offset-expected"], got
    # v2: every EndTxn (commit or abort) bumps the epoch; v1 keeps it.
    assert got["epoch-bumps"] == str(TRANSACTIONS if level == 2 else 0), got


def test_librdkafka_stays_on_transactions_v1_at_level_2(tmp_path):
    """librdkafka caps EndTxn at v1 and Produce at v10: the broker serves it
    as before (the version of each request decides)."""
    broker = Broker(str(tmp_path), env={"GREGOR_TRANSACTION_VERSION": "2"}).start()
    try:
        create(broker.bootstrap, "rd", 3)
        producer = transactional(broker.bootstrap, "rd-producer")
        for t in range(4):
            producer.begin_transaction()
            for i in range(30):
                producer.produce("rd", value=f"t{t}-{i}".encode(), partition=i % 3)
            if t % 2:
                producer.abort_transaction(30)
            else:
                producer.commit_transaction(30)
        values = read(broker.bootstrap, "rd", 3, "read_committed")
        got = sorted(v for vs in values.values() for v in vs)
        assert got == sorted(f"t{t}-{i}" for t in (0, 2) for i in range(30))
    finally:
        broker.stop()
