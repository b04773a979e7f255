// Kafka's Java consumer with group.protocol=consumer (KIP-848) against a
// broker, for tests/e2e/test_jvm.py. Two consumers of one group share a
// 6-partition topic by the server-side assignor named on the command line:
// the first takes every partition, the second joins and the coordinator
// moves half over (never one partition to both at once), both read and
// commit, Admin describes the group, the second leaves and the first gets
// everything back. Prints `name value` lines for the test.
//
// Usage: ConsumerProtocolCheck <bootstrap> <topic> <records> <assignor>
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ConsumerProtocolCheck {
    static final int PARTITIONS = 6;

    static void out(String name, Object value) {
        System.out.println(name + " " + value);
    }

    static KafkaConsumer<String, String> consumer(Properties common, String group, String assignor) {
        Properties p = new Properties();
        p.putAll(common);
        p.put("group.id", group);
        p.put("group.protocol", "consumer");
        p.put("group.remote.assignor", assignor);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Polls `c` once, recording what it read; the records read. */
    static int poll(KafkaConsumer<String, String> c, Set<String> seen) {
        int n = 0;
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
            seen.add(r.key());
            n++;
        }
        return n;
    }

    /** Whether `c` has read to the end of every partition it holds. */
    static boolean caughtUp(KafkaConsumer<String, String> c) {
        Map<TopicPartition, Long> ends = c.endOffsets(c.assignment());
        return ends.entrySet().stream().allMatch(e -> c.position(e.getKey()) >= e.getValue());
    }

    static String sorted(Set<TopicPartition> partitions) {
        return partitions.stream().map(TopicPartition::partition).sorted().map(String::valueOf)
            .collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = topic + "-group", assignor = args[3];
        int records = Integer.parseInt(args[2]);
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);

        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
            for (long end = System.currentTimeMillis() + 30_000; TopicsReady.leaderless(
                    TopicsReady.describe(admin, topic)) > 0 && System.currentTimeMillis() < end; Thread.sleep(100)) {
            }
        }
        Properties producerProps = new Properties();
        producerProps.putAll(common);
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            for (int i = 0; i < records; i++) {
                producer.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i));
            }
            producer.flush();
        }

        Set<String> seen = new HashSet<>();
        KafkaConsumer<String, String> a = consumer(common, group, assignor);
        a.subscribe(List.of(topic));
        long deadline = System.currentTimeMillis() + 60_000;
        while (a.assignment().size() < PARTITIONS && System.currentTimeMillis() < deadline) {
            poll(a, seen);
        }
        out("first", sorted(a.assignment()));

        KafkaConsumer<String, String> b = consumer(common, group, assignor);
        b.subscribe(List.of(topic));
        int overlaps = 0;
        deadline = System.currentTimeMillis() + 90_000;
        // Until the two hold every partition between them, split, and
        // every record was read.
        while (System.currentTimeMillis() < deadline) {
            poll(a, seen);
            poll(b, seen);
            Set<TopicPartition> both = new HashSet<>(a.assignment());
            both.retainAll(b.assignment());
            if (!both.isEmpty()) {
                overlaps++;
            }
            if (a.assignment().size() + b.assignment().size() == PARTITIONS && !b.assignment().isEmpty()
                    && seen.size() >= records && caughtUp(a) && caughtUp(b)) {
                break;
            }
        }
        out("split", a.assignment().size() + " " + b.assignment().size());
        out("overlaps", overlaps);
        out("distinct", seen.size());
        a.commitSync();
        b.commitSync();

        try (Admin admin = Admin.create(common)) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            out("type", d.type());
            out("state", d.state());
            out("members", d.members().size());
            List<String> held = new ArrayList<>();
            for (MemberDescription m : d.members()) {
                held.add(String.valueOf(m.assignment().topicPartitions().size()));
            }
            held.sort(null);
            out("member-partitions", String.join(",", held));
            Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            out("committed", committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum());
        }

        b.close();
        deadline = System.currentTimeMillis() + 60_000;
        while (a.assignment().size() < PARTITIONS && System.currentTimeMillis() < deadline) {
            poll(a, seen);
        }
        out("after-leave", sorted(a.assignment()));
        a.close();
    }
}
