//! Starts and stops a real ZooKeeper 3.8 (Debian's `zookeeper` package) for
//! one test, on a free port with its own data directory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JAR: &str = "/usr/share/java/zookeeper.jar";

/// A running ZooKeeper; killed when dropped.
pub struct ZooKeeperServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ZooKeeperServer {
    /// Starts one and waits until it answers `ruok`.
    pub fn start() -> Self {
        assert!(
            Path::new(JAR).exists(),
            "ZooKeeper is not installed: `apt-get install -y zookeeper` (scripts/test.sh does this)"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok\nmaxSessionTimeout=60000\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("zookeeper.out")).unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties",
                "-cp",
                &format!("/etc/zookeeper/conf:{JAR}:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("java is needed to run ZooKeeper");
        let mut server = Self { child, port, dir };
        server.wait_ready();
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server has logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("zookeeper.out")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                // A server still starting may accept and never answer.
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut answer = String::new();
                if s.write_all(b"ruok").is_ok() && s.read_to_string(&mut answer).is_ok() && answer == "imok" {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let out = std::fs::read_to_string(self.dir.path().join("zookeeper.out")).unwrap_or_default();
                panic!("ZooKeeper exited with {status}:\n{out}");
            }
            assert!(Instant::now() < deadline, "ZooKeeper did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
