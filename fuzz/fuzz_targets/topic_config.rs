//! Arbitrary `name=value` lines through the topic-config table, as
//! CreateTopics and IncrementalAlterConfigs hand them over: parsing must
//! refuse cleanly (never panic), and a configuration that was accepted
//! must describe itself in values that parse back to the same
//! configuration.
#![no_main]

use std::collections::BTreeMap;

use gregor_log::LogConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let overrides: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut one_by_one = LogConfig::default();
    for (name, value) in &overrides {
        let _ = one_by_one.set(name, value);
    }
    let Ok(config) = LogConfig::with_overrides(&LogConfig::default(), &overrides) else {
        return;
    };
    let shown: BTreeMap<String, String> = config
        .describe()
        .into_iter()
        .map(|e| (e.name.to_string(), e.value))
        .collect();
    let again = LogConfig::with_overrides(&LogConfig::default(), &shown).expect("a described config parses");
    assert_eq!(again, config);
});
