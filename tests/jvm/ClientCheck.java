// Kafka's Java client (3.9 or 4.x, the same source) against a broker, for
// tests/e2e/test_jvm.py: Admin creates a topic with configs and describes it,
// a producer with its defaults (idempotent, acks=all) sends keyed records, a
// consumer in a classic group reads them and commits, Admin lists offsets and
// the group's committed offsets. Prints `name value` lines for the test.
//
// Usage: ClientCheck <bootstrap> <topic> <records>
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ClientCheck {
    static final int PARTITIONS = 3;

    static void out(String name, Object value) {
        System.out.println(name + " " + value);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = topic + "-group";
        int records = Integer.parseInt(args[2]);
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);

        try (Admin admin = Admin.create(common)) {
            Map<String, String> configs = Map.of("retention.ms", "3600000", "max.message.bytes", "2000000");
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1).configs(configs)))
                .all().get(30, TimeUnit.SECONDS);
            // gregor elects the leaders after answering CreateTopics (see
            // TopicsReady.java): wait for them.
            TopicDescription d = TopicsReady.describe(admin, topic);
            for (long end = System.currentTimeMillis() + 30_000; TopicsReady.leaderless(d) > 0
                    && System.currentTimeMillis() < end; Thread.sleep(100)) {
                d = TopicsReady.describe(admin, topic);
            }
            out("partitions", d.partitions().size());
            out("replicas", d.partitions().stream().mapToInt(p -> p.replicas().size()).sum());
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            for (String name : List.of("retention.ms", "max.message.bytes", "cleanup.policy")) {
                ConfigEntry e = config.get(name);
                out("config." + name, e.value() + " " + e.source());
            }
        }

        Properties producerProps = new Properties();
        producerProps.putAll(common);
        producerProps.put("key.serializer", StringSerializer.class.getName());
        producerProps.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < records; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                f.get();
            }
            out("produced", sent.size());
        }

        Properties consumerProps = new Properties();
        consumerProps.putAll(common);
        consumerProps.put("group.id", group);
        consumerProps.put("group.protocol", "classic");
        consumerProps.put("auto.offset.reset", "earliest");
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("key.deserializer", StringDeserializer.class.getName());
        consumerProps.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps)) {
            consumer.subscribe(List.of(topic));
            Map<String, Integer> seen = new HashMap<>();
            int consumed = 0, mismatched = 0, quietPolls = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            // Until every record came and then three polls brought nothing more.
            while (quietPolls < 3 && System.currentTimeMillis() < deadline) {
                int before = consumed;
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    consumed++;
                    seen.merge(r.key(), 1, Integer::sum);
                    if (!r.value().equals("value-" + r.key().substring(4))) {
                        mismatched++;
                    }
                }
                quietPolls = consumed >= records && consumed == before ? quietPolls + 1 : 0;
            }
            consumer.commitSync();
            out("consumed", consumed);
            out("distinct", seen.size());
            out("mismatched", mismatched);
            out("assigned", consumer.assignment().size());
        }

        try (Admin admin = Admin.create(common)) {
            Map<TopicPartition, OffsetSpec> earliest = new HashMap<>(), latest = new HashMap<>();
            for (int p = 0; p < PARTITIONS; p++) {
                earliest.put(new TopicPartition(topic, p), OffsetSpec.earliest());
                latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            out("start-offsets", admin.listOffsets(earliest).all().get().values().stream()
                .mapToLong(o -> o.offset()).sum());
            out("end-offsets", admin.listOffsets(latest).all().get().values().stream()
                .mapToLong(o -> o.offset()).sum());
            Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            out("committed-partitions", committed.size());
            out("committed", committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum());
        }
    }
}
