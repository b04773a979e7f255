// Kafka's Java producer writing `records` records of `size` bytes to
// partition 0 of `topic`, for bench/transactions_java.py: idempotent
// (acks=all, the Java client's default), or transactional with a commit
// every `perTransaction` records. Prints `records_per_s <n>` and, for the
// transactional mode, the producer's transaction-version metric when the
// client has one.
//
// Usage: TransactionBench <bootstrap> <topic> <records> <size> <idempotent|transactional> <perTransaction>
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TransactionBench {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], mode = args[4];
        int records = Integer.parseInt(args[2]), size = Integer.parseInt(args[3]);
        int perTransaction = Integer.parseInt(args[5]);
        boolean transactional = mode.equals("transactional");
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("linger.ms", "5");
        if (transactional) {
            p.put("transactional.id", "bench-" + System.nanoTime());
        }
        byte[] value = new byte[size];
        AtomicReference<Exception> failed = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            if (transactional) {
                producer.initTransactions();
            }
            // A warm-up the timing leaves out: the JVM's first seconds.
            send(producer, topic, value, Math.min(records / 10, 50_000), transactional, perTransaction, failed);
            long started = System.nanoTime();
            send(producer, topic, value, records, transactional, perTransaction, failed);
            double seconds = (System.nanoTime() - started) / 1e9;
            if (failed.get() != null) {
                throw failed.get();
            }
            System.out.println("records_per_s " + Math.round(records / seconds));
        }
    }

    static void send(KafkaProducer<byte[], byte[]> producer, String topic, byte[] value, int records,
                     boolean transactional, int perTransaction, AtomicReference<Exception> failed) {
        for (int i = 0; i < records; i++) {
            if (transactional && i % perTransaction == 0) {
                producer.beginTransaction();
            }
            producer.send(new ProducerRecord<>(topic, 0, null, value), (metadata, e) -> {
                if (e != null) {
                    failed.compareAndSet(null, e);
                }
            });
            if (transactional && (i % perTransaction == perTransaction - 1 || i == records - 1)) {
                producer.commitTransaction();
            }
        }
        producer.flush();
    }
}
