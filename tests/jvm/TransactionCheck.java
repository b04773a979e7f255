// Kafka's Java client (3.9 or 4.x, the same source) doing transactions
// against a broker, for tests/e2e/test_jvm.py: a transactional producer
// commits one transaction, aborts one, commits another; a read_committed and
// a read_uncommitted consumer count what they see; then a
// consume-transform-produce step (sendOffsetsToTransaction with the
// consumer's group metadata) copies the input to an output topic, and a
// second producer with the same transactional.id fences the first. Prints
// `name value` lines for the test.
//
// Usage: TransactionCheck <bootstrap> <topic>
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TransactionCheck {
    static void out(String name, Object value) {
        System.out.println(name + " " + value);
    }

    static KafkaProducer<String, String> producer(String bootstrap, String transactionalId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", transactionalId);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        producer.initTransactions();
        return producer;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String isolation) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("isolation.level", isolation);
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        return new KafkaConsumer<>(c);
    }

    /** Every value of partition 0 of `topic` up to its end for `isolation`. */
    static List<String> readAll(String bootstrap, String topic, String isolation) {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, topic + "-reader", isolation)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            List<String> values = new java.util.ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (c.position(tp) < end && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    values.add(r.value());
                }
            }
            return values;
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], output = topic + "-out";
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1), new NewTopic(output, 1, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }

        try (KafkaProducer<String, String> producer = producer(bootstrap, topic + "-txn")) {
            String[][] transactions = {{"first", "commit"}, {"aborted", "abort"}, {"second", "commit"}};
            for (String[] t : transactions) {
                producer.beginTransaction();
                for (int i = 0; i < 5; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, t[0] + "-" + i));
                }
                producer.flush();
                if (t[1].equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
            }
        }
        out("read_committed", String.join(",", readAll(bootstrap, topic, "read_committed")));
        out("read_uncommitted", readAll(bootstrap, topic, "read_uncommitted").size());
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "watermarks", "read_committed")) {
            TopicPartition tp = new TopicPartition(topic, 0);
            out("committed-end", c.endOffsets(List.of(tp)).get(tp));
        }

        // Consume-transform-produce: the offsets commit with the output.
        KafkaProducer<String, String> first = producer(bootstrap, "copier");
        try (KafkaConsumer<String, String> c = consumer(bootstrap, "copier-group", "read_committed")) {
            c.subscribe(List.of(topic));
            int copied = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (copied < 10 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                if (records.isEmpty()) {
                    continue;
                }
                first.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> positions = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    first.send(new ProducerRecord<>(output, 0, r.key(), r.value().toUpperCase()));
                    positions.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    copied++;
                }
                first.sendOffsetsToTransaction(positions, c.groupMetadata());
                first.commitTransaction();
            }
            out("copied", copied);
            TopicPartition tp = new TopicPartition(topic, 0);
            out("group-committed", c.committed(java.util.Set.of(tp)).get(tp).offset());
        }
        out("output", String.join(",", readAll(bootstrap, output, "read_committed")));

        // A second producer with the same transactional.id fences the first.
        first.beginTransaction();
        first.send(new ProducerRecord<>(output, 0, "zombie", "zombie")).get();
        try (KafkaProducer<String, String> second = producer(bootstrap, "copier")) {
            second.beginTransaction();
            second.send(new ProducerRecord<>(output, 0, "successor", "successor"));
            second.commitTransaction();
        }
        try {
            first.commitTransaction();
            out("zombie", "committed");
        } catch (ProducerFencedException e) {
            out("zombie", "fenced");
        } catch (KafkaException e) {
            out("zombie", e.getClass().getSimpleName());
        }
        first.close(Duration.ofSeconds(5));
        List<String> after = readAll(bootstrap, output, "read_committed");
        out("output-last", after.get(after.size() - 1));
        out("output-zombies", after.stream().filter(v -> v.equals("zombie")).count());
    }
}
