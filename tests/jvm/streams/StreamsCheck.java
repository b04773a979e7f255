// Kafka Streams (4.x) with processing.guarantee=exactly_once_v2 (or the
// guarantee given, e.g. at_least_once) against a broker, for tests/e2e/test_jvm.py: a stateless application (input mapped
// to upper case), then a stateful one (records grouped by value and counted:
// a repartition topic and a changelog topic, both created by Streams through
// the Admin client), stopped, given more input and started again (its store
// restored from the changelog). A read_committed consumer checks every
// output; prints `name value` lines for the test.
//
// Usage: StreamsCheck <bootstrap> <prefix> <records> <replication factor> <state dir> [guarantee]
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Produced;

public class StreamsCheck {
    static final int PARTITIONS = 3;
    static final int WORDS = 10;
    static final long TIMEOUT_MS = 120_000;
    /** processing.guarantee of every application. */
    static String guarantee = StreamsConfig.EXACTLY_ONCE_V2;

    static void out(String name, Object value) {
        System.out.println(name + " " + value);
        System.out.flush();
    }

    /** Records `from` until `to` of the input: key k<i>, value w<i mod WORDS>. */
    static void produce(String bootstrap, String topic, int from, int to) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = from; i < to; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, "w" + (i % WORDS)));
            }
            producer.flush();
        }
    }

    /**
     * Runs `topology` as application `id` until a read_committed view of
     * `output` (every record, in order per partition) satisfies `done`, or
     * the timeout; returns that view. The application stops after, leaving
     * its group (so that a restart does not wait for its session to end).
     */
    static <V> List<ConsumerRecord<String, V>> run(String bootstrap, String id, Topology topology, String stateDir,
                                                   short replication, String output, Deserializer<V> values,
                                                   Predicate<List<ConsumerRecord<String, V>>> done) {
        Properties s = new Properties();
        s.put(StreamsConfig.APPLICATION_ID_CONFIG, id);
        s.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        s.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        s.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, (int) replication);
        s.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        s.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        // Purge consumed repartition records (DeleteRecords) at once, not every 30 s.
        s.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 100);
        s.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        s.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        KafkaStreams streams = new KafkaStreams(topology, s);
        streams.setUncaughtExceptionHandler(e -> {
            out(id + "-error", e.toString().replace('\n', ' '));
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        List<ConsumerRecord<String, V>> seen = new ArrayList<>();
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("isolation.level", "read_committed");
        c.put("enable.auto.commit", "false");
        try (KafkaConsumer<String, V> consumer = new KafkaConsumer<>(c, new StringDeserializer(), values)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                partitions.add(new TopicPartition(output, p));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            streams.start();
            long deadline = System.currentTimeMillis() + TIMEOUT_MS;
            while (!done.test(seen) && System.currentTimeMillis() < deadline
                   && streams.state() != KafkaStreams.State.ERROR
                   && streams.state() != KafkaStreams.State.NOT_RUNNING) {
                for (ConsumerRecord<String, V> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.add(r);
                }
            }
            out(id + "-state", streams.state());
        } finally {
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                .withTimeout(Duration.ofSeconds(30)));
        }
        return seen;
    }

    /** The last count of each word in `seen`. */
    static Map<String, Long> latest(List<ConsumerRecord<String, Long>> seen) {
        Map<String, Long> counts = new TreeMap<>();
        for (ConsumerRecord<String, Long> r : seen) {
            counts.put(r.key(), r.value());
        }
        return counts;
    }

    /** Whether some partition of `topic` starts above offset 0. */
    static boolean purged(KafkaConsumer<String, String> consumer, String topic) {
        List<TopicPartition> partitions = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            partitions.add(new TopicPartition(topic, p));
        }
        try {
            return consumer.beginningOffsets(partitions).values().stream().anyMatch(o -> o > 0);
        } catch (org.apache.kafka.common.KafkaException e) {
            return false; // not created yet
        }
    }

    static boolean countsReach(List<ConsumerRecord<String, Long>> seen, long each) {
        Map<String, Long> counts = latest(seen);
        return counts.size() == WORDS && counts.values().stream().allMatch(v -> v >= each);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], prefix = args[1], stateDir = args[4];
        int records = Integer.parseInt(args[2]);
        short replication = Short.parseShort(args[3]);
        if (args.length > 5) {
            guarantee = args[5];
        }
        String input = prefix + "-in", mapped = prefix + "-upper", counted = prefix + "-counts";
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(input, PARTITIONS, replication),
                                       new NewTopic(mapped, PARTITIONS, replication),
                                       new NewTopic(counted, PARTITIONS, replication)))
                .all().get(30, TimeUnit.SECONDS);
        }
        produce(bootstrap, input, 0, records);

        // Stateless: every input once, upper-cased.
        StreamsBuilder upper = new StreamsBuilder();
        upper.<String, String>stream(input).mapValues(v -> v.toUpperCase()).to(mapped);
        List<ConsumerRecord<String, String>> upperSeen = run(bootstrap, prefix + "-upper-app", upper.build(),
            stateDir, replication, mapped, new StringDeserializer(), seen -> seen.size() >= records);
        out("upper-records", upperSeen.size());
        out("upper-distinct", upperSeen.stream().map(ConsumerRecord::key).distinct().count());
        out("upper-wrong", upperSeen.stream().filter(r -> !r.value().equals(r.value().toUpperCase())
                                                         || !r.value().startsWith("W")).count());

        // Stateful: counts by value, through a repartition topic, the store
        // in a changelog topic.
        StreamsBuilder counting = new StreamsBuilder();
        counting.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .groupBy((k, v) -> v, Grouped.with("by-word", Serdes.String(), Serdes.String()))
            .count()
            .toStream()
            .to(counted, Produced.with(Serdes.String(), Serdes.Long()));
        Topology countTopology = counting.build();
        long each = records / WORDS;
        // Until every count is there and Streams has purged records it
        // consumed from its repartition topic (DeleteRecords).
        String repartition = prefix + "-count-app-by-word-repartition";
        List<ConsumerRecord<String, Long>> countSeen;
        try (KafkaConsumer<String, String> offsets = new KafkaConsumer<>(common, new StringDeserializer(),
                                                                         new StringDeserializer())) {
            countSeen = run(bootstrap, prefix + "-count-app", countTopology, stateDir, replication, counted,
                Serdes.Long().deserializer(), seen -> countsReach(seen, each) && purged(offsets, repartition));
            out("repartition-purged", purged(offsets, repartition));
        }
        out("counts", latest(countSeen));
        out("counts-above", countSeen.stream().filter(r -> r.value() > each).count());
        try (Admin admin = Admin.create(common)) {
            List<String> internal = new ArrayList<>();
            for (String t : admin.listTopics().names().get(30, TimeUnit.SECONDS)) {
                if (t.startsWith(prefix + "-count-app-")) {
                    internal.add(t.substring((prefix + "-count-app-").length()));
                }
            }
            internal.sort(null);
            out("internal-topics", String.join(",", internal));
        }

        // More input, the application again on an empty state dir: its
        // store restored from the changelog (read_committed), its counts go
        // on from there, each input counted once.
        produce(bootstrap, input, records, 2 * records);
        List<ConsumerRecord<String, Long>> again = run(bootstrap, prefix + "-count-app", countTopology,
            stateDir + "/again",
            replication, counted, Serdes.Long().deserializer(), seen -> countsReach(seen, 2 * each));
        out("counts-after-restart", latest(again));
        out("counts-after-restart-above", again.stream().filter(r -> r.value() > 2 * each).count());
    }
}
