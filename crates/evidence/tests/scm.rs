//! Decoding and filters on the real logs.

use evidence::{
    parse_duration, parse_time, read_log, read_log_file, EventKind, Provider, Query, ServiceState,
    StartType,
};

fn log(name: &str) -> std::path::PathBuf {
    fixtures::path(&format!("evtx/{name}.evtx"))
}

fn dhcp_7036(name: &str, service: &str) -> Vec<evidence::Event> {
    let query = Query {
        service: Some(service.into()),
        event_ids: vec![7036],
        ..Query::default()
    };
    read_log_file(log(name), &query).unwrap().events
}

#[test]
fn dhcp_state_changes_by_key_or_display_name() {
    // Counts from testdata/SOURCES.md (checked with evtxexport).
    for (name, expected) in [("srv2008r2-System", 15), ("srv2012r2-System", 21)] {
        let by_key = dhcp_7036(name, "Dhcp");
        assert_eq!(by_key.len(), expected, "{name}");
        assert_eq!(dhcp_7036(name, "dhcp client"), by_key, "{name}");
        for e in &by_key {
            assert_eq!(e.service.as_deref(), Some("DHCP Client"));
            assert_eq!(e.service_key.as_deref(), Some("Dhcp"));
            assert!(matches!(
                e.state,
                Some(ServiceState::Running | ServiceState::Stopped)
            ));
            assert_eq!(e.kind, EventKind::StateChanged);
        }
    }
}

#[test]
fn state_comes_from_binary_field() {
    let events = dhcp_7036("srv2008r2-System", "Dhcp");
    for e in events {
        let param2 = &e.data.iter().find(|(n, _)| n == "param2").unwrap().1;
        assert_eq!(e.state.unwrap().as_str(), *param2, "record {}", e.record_id);
    }
}

#[test]
fn start_type_changes() {
    let query = Query {
        event_ids: vec![7040],
        ..Query::default()
    };
    let report = read_log_file(log("srv2008r2-System"), &query).unwrap();
    assert_eq!(report.events.len(), 1018);
    let disabled = report
        .events
        .iter()
        .filter(|e| {
            let c = e.start_type.as_ref().unwrap();
            c.old == StartType::Disabled || c.new == StartType::Disabled
        })
        .count();
    // testdata/SOURCES.md: 5 to/from disabled.
    assert_eq!(disabled, 5);
    // Windows 10 writes the key name as param4.
    let report = read_log_file(log("win10-rathbun-System"), &query).unwrap();
    assert_eq!(report.events.len(), 46);
    assert!(report.events.iter().all(|e| e.service_key.is_some()));
}

#[test]
fn errors_are_decoded() {
    let query = Query {
        event_ids: vec![7023],
        ..Query::default()
    };
    let report = read_log_file(log("win10-belkasoft-System"), &query).unwrap();
    let errors: Vec<_> = report.events.iter().map(|e| e.error.unwrap()).collect();
    // Spooler `%%2147942414` (an HRESULT wrapping Win32 14), iphlpsvc `%%21`.
    assert_eq!(
        errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        [0x8007_000e, 21]
    );
    assert!(errors.iter().all(|e| e.message.is_some()));
    assert!(report.events[0].summary().ends_with(
        "error 0x8007000e (Win32 14) \"Not enough memory resources are available to complete this operation.\""
    ));
    assert!(report.events[1]
        .summary()
        .ends_with("error 21 \"The device is not ready.\""));
}

#[test]
fn within_counts_back_from_the_newest_record() {
    let all = read_log_file(log("srv2012r2-System"), &Query::default()).unwrap();
    let newest = all.stats.newest.unwrap();
    assert_eq!(newest, parse_time("2020-09-19T04:51:04.7047918Z").unwrap());
    let day = parse_duration("24h").unwrap();
    let query = Query {
        within: Some(day),
        ..Query::default()
    };
    let recent = read_log_file(log("srv2012r2-System"), &query).unwrap();
    let cutoff = newest.checked_sub(day).unwrap();
    let expected: Vec<_> = all
        .events
        .iter()
        .filter(|e| e.time >= cutoff)
        .cloned()
        .collect();
    assert!(!expected.is_empty() && expected.len() < all.events.len());
    assert_eq!(recent.events, expected);
}

#[test]
fn since_and_max() {
    let all = read_log_file(log("srv2008r2-System"), &Query::default()).unwrap();
    let since = parse_time("2015-01-01T00:00:00Z").unwrap();
    let query = Query {
        since: Some(since),
        max: Some(3),
        ..Query::default()
    };
    let report = read_log_file(log("srv2008r2-System"), &query).unwrap();
    let expected: Vec<_> = all
        .events
        .iter()
        .filter(|e| e.time >= since)
        .cloned()
        .collect();
    assert!(expected.len() > 3);
    assert_eq!(report.events, expected[expected.len() - 3..]);
}

#[test]
fn events_are_in_record_order() {
    let report = read_log_file(log("srv2012r2-System"), &Query::default()).unwrap();
    assert_eq!(report.stats.records, 60189);
    assert_eq!(report.events.len(), 1242);
    assert!(report
        .events
        .windows(2)
        .all(|w| w[0].record_id < w[1].record_id));
}

#[test]
fn reader_and_path_agree_and_xml_is_rendered() {
    let query = Query {
        service: Some("Dhcp".into()),
        keep_xml: true,
        ..Query::default()
    };
    let bytes = fixtures::bytes("evtx/srv2008r2-System.evtx");
    let from_reader = read_log(std::io::Cursor::new(bytes), &query).unwrap();
    let from_path = read_log_file(log("srv2008r2-System"), &query).unwrap();
    assert_eq!(from_reader.events, from_path.events);
    let xml = from_reader.events[0].xml.as_deref().unwrap();
    assert!(xml.contains("Service Control Manager") && xml.contains("<EventID"));
}

#[test]
fn other_providers() {
    let query = Query {
        provider: Provider::from_arg("eventlog"),
        event_ids: vec![6005],
        ..Query::default()
    };
    let report = read_log_file(log("srv2008r2-System"), &query).unwrap();
    assert!(!report.events.is_empty());
    assert!(report
        .events
        .iter()
        .all(|e| e.provider == "EventLog" && e.kind == EventKind::Other));
    let any = Query {
        provider: Provider::Any,
        ..Query::default()
    };
    let report = read_log_file(log("win10-vss7-System"), &any).unwrap();
    assert_eq!(report.events.len(), 1160);
}
