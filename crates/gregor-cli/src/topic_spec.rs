//! `--topic` values of the group commands: `TOPIC` (every partition) or
//! `TOPIC:P,P,…`, checked against the cluster's topics.

use anyhow::Context;
use gregor_client::GroupAdmin;

/// A `--topic` value: `TOPIC` (`None`: every partition) or `TOPIC:P,P,…`.
pub fn parse_topic_spec(spec: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, None),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .with_context(|| format!("--topic {spec:?}: {p:?} is not a partition number"))
                })
                .collect::<anyhow::Result<Vec<i32>>>()?;
            (topic, Some(partitions))
        }
    };
    anyhow::ensure!(!topic.trim().is_empty(), "--topic {spec:?}: no topic name");
    Ok((topic.trim().to_string(), partitions))
}

/// The partitions `--topic` values name, checked against the topics'
/// partition counts (an unknown topic or partition is an error).
pub async fn resolve_partitions(admin: &mut GroupAdmin, specs: &[String]) -> anyhow::Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    for spec in specs {
        let (topic, partitions) = parse_topic_spec(spec)?;
        let count = admin
            .partitions(&topic)
            .await
            .with_context(|| format!("looking up topic {topic}"))?;
        match partitions {
            None => out.extend((0..count).map(|p| (topic.clone(), p))),
            Some(list) => {
                for p in list {
                    anyhow::ensure!(
                        p < count,
                        "topic {topic} has {count} partitions: there is no partition {p}"
                    );
                    out.push((topic.clone(), p));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs_name_a_topic_or_some_of_its_partitions() {
        assert_eq!(parse_topic_spec("orders").unwrap(), ("orders".into(), None));
        assert_eq!(
            parse_topic_spec("orders:0,2").unwrap(),
            ("orders".into(), Some(vec![0, 2]))
        );
        for bad in ["", ":1", "orders:", "orders:x", "orders:-1", "orders:1,,2"] {
            assert!(parse_topic_spec(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
