// Kafka's Java producer 4.x running many transactions against a broker, for
// tests/e2e/test_transactions_v2.py: `transactions` transactions of
// `per` records each over the 3 partitions of `topic`, every third one
// aborted, each also committing an offset of group `<topic>-group`
// (sendOffsetsToTransaction); then a read_committed consumer reads the
// topic to its end. The producer's epoch is read with DescribeTransactions
// after initTransactions and after the last transaction: transactions v2
// bumps it at every end, v1 keeps it. Prints `name value` lines.
//
// Usage: TransactionV2Check <bootstrap> <topic> <transactions> <per>
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TransactionV2Check {
    static void out(String name, Object value) {
        System.out.println(name + " " + value);
    }

    static int epoch(Admin admin, String transactionalId) throws Exception {
        return admin.describeTransactions(List.of(transactionalId)).description(transactionalId)
                .get(30, TimeUnit.SECONDS).producerEpoch();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int transactions = Integer.parseInt(args[2]);
        int per = Integer.parseInt(args[3]);
        String transactionalId = topic + "-producer";
        String group = topic + "-group";
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("transactional.id", transactionalId);
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            p.put("linger.ms", "5");
            Set<String> committed = new HashSet<>();
            long lastCommittedOffset = -1;
            int before;
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                producer.initTransactions();
                before = epoch(admin, transactionalId);
                for (int t = 0; t < transactions; t++) {
                    boolean abort = t % 3 == 2;
                    producer.beginTransaction();
                    List<String> values = new ArrayList<>();
                    for (int i = 0; i < per; i++) {
                        String value = "t" + t + "-" + i;
                        producer.send(new ProducerRecord<>(topic, i % 3, value, value));
                        values.add(value);
                    }
                    TopicPartition tp = new TopicPartition(topic, 0);
                    producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(t + 1)),
                            new ConsumerGroupMetadata(group));
                    if (abort) {
                        producer.abortTransaction();
                    } else {
                        producer.commitTransaction();
                        committed.addAll(values);
                        lastCommittedOffset = t + 1;
                    }
                }
            }
            int after = epoch(admin, transactionalId);
            out("produced", transactions * per);
            out("committed", committed.size());
            out("epoch-bumps", after - before);
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            OffsetAndMetadata groupOffset = offsets.get(new TopicPartition(topic, 0));
            out("group-offset-expected", lastCommittedOffset);
            out("group-offset", groupOffset == null ? -1 : groupOffset.offset());

            Properties c = new Properties();
            c.put("bootstrap.servers", bootstrap);
            c.put("isolation.level", "read_committed");
            c.put("key.deserializer", StringDeserializer.class.getName());
            c.put("value.deserializer", StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                List<TopicPartition> partitions = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    partitions.add(new TopicPartition(topic, i));
                }
                consumer.assign(partitions);
                consumer.seekToBeginning(partitions);
                Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
                List<String> seen = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 60_000;
                while (System.currentTimeMillis() < deadline) {
                    boolean done = true;
                    for (TopicPartition tp : partitions) {
                        done &= consumer.position(tp) >= ends.get(tp);
                    }
                    if (done) {
                        break;
                    }
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        seen.add(r.value());
                    }
                }
                out("consumed", seen.size());
                out("exact", new HashSet<>(seen).equals(committed) && seen.size() == committed.size());
            }
        }
    }
}
