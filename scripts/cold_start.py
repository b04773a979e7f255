"""Cold start with many partitions: starts `gregor-server` (argv[1]) on
port argv[2] over the log dirs in argv[3] (made beforehand, e.g. 10 topics
of 1,000 partitions), and prints the time to listening, to every partition
having its leader (Metadata through librdkafka), one Metadata request for
every topic, and the RSS then."""
import os
import socket
import subprocess
import sys
import time

from confluent_kafka.admin import AdminClient
binary, port = sys.argv[1], sys.argv[2]
t0 = time.time()
p = subprocess.Popen([binary, "--listeners", f"PLAINTEXT://127.0.0.1:{port}", "--log-dirs", sys.argv[3], "--metrics-listen", ""],
                     stdout=open(os.devnull, "w"), stderr=subprocess.STDOUT)
while True:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=0.05).close(); break
    except OSError:
        time.sleep(0.005)
t_listen = time.time() - t0
a = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
expected = int(os.environ.get("PARTITIONS", "10000"))
while True:
    md = a.list_topics(timeout=30)
    ok = sum(1 for n, t in md.topics.items() if not n.startswith("__") for q in t.partitions.values() if q.leader >= 0 and q.error is None)
    if ok == expected: break
    time.sleep(0.02)
t_led = time.time() - t0
t1 = time.time(); md = a.list_topics(timeout=30); t_md = time.time() - t1
print(f"listening {t_listen:.2f}s, all {expected} led {t_led:.2f}s, Metadata(all) {t_md*1000:.0f} ms")
rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].strip()
print(rss)
p.terminate(); p.wait()
