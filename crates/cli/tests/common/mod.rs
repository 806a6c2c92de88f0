//! Helpers shared by the CLI tests.

/// The DHCP Client's service analysis (`service` of its finding) in a `diagnose --json` report.
pub fn dhcp(report: &serde_json::Value) -> serde_json::Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "service:Dhcp")
        .expect("the DHCP Client's finding")["service"]
        .clone()
}
