// Whether a topic's partitions have leaders as soon as CreateTopics has
// answered, as Kafka's brokers make sure they do (a CreateTopics request with
// a timeout waits until every partition has a leader): creates <topics>
// topics of 3 partitions, each described right away, and prints the number
// of partitions that had no leader, for tests/e2e/test_jvm.py.
//
// Usage: TopicsReady <bootstrap> <topics>
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;

public class TopicsReady {
    static TopicDescription describe(Admin admin, String topic) throws Exception {
        return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
    }

    static long leaderless(TopicDescription d) {
        return d.partitions().stream().filter(p -> p.leader() == null).count();
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        long leaderless = 0;
        try (Admin admin = Admin.create(props)) {
            for (int i = 0; i < Integer.parseInt(args[1]); i++) {
                String topic = "ready-" + i;
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
                leaderless += leaderless(describe(admin, topic));
            }
        }
        System.out.println("leaderless " + leaderless);
    }
}
