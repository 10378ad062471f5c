//! The industrial IoT example: signed parameter changes, lockdown, and batches SCADA
//! verifies with the device's public key alone — including one damaged in transit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/industrial_iot/main.rs"]
#[allow(dead_code)]
mod industrial_iot;

use industrial_iot::{Device, OPERATORS, Scada};
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Line {
    seq: u64,
    session_id: u64,
    user: String,
    class: String,
    operation: String,
    success: bool,
    custom: BTreeMap<String, String>,
}

fn archive(scada: &Scada) -> Vec<Line> {
    std::fs::read_to_string(scada.archive_file())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn three_weeks_offline_two_syncs_everything_arrives_verified() {
    let dir = tempfile::tempdir().unwrap();
    let report = industrial_iot::run(dir.path()).unwrap();
    // Weeks 1-3, six shifts each: three of Ben's six signatures per week use a wrong PIN
    // and are redone.
    assert_eq!(report.parameter_changes, 18);
    assert_eq!(report.rejected_signatures, 9);
    assert!(
        report.audit_delete_refused,
        "lockdown refuses audit deletes"
    );
    assert!(report.prune_refused, "lockdown refuses pruning");
    assert!(report.device_intact);
    assert!(
        report.checkpoints_on_device >= 1,
        "the checkpoint sink signed"
    );

    assert_eq!(report.syncs.len(), 2);
    assert_eq!(report.syncs[0].after, 0);
    assert_eq!(report.syncs[1].after, report.syncs[0].size);
    assert_eq!(
        report.scada_events, report.syncs[1].size,
        "every event up to the last sync arrived, once"
    );

    let scada = Scada::new(
        &dir.path().join("device/keys/line-3.pub"),
        &dir.path().join("scada"),
    )
    .unwrap();
    let events = archive(&scada);
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=report.syncs[1].size).collect::<Vec<_>>());
    // Every signed change reached SCADA with its signer's printed name and meaning, right
    // after the UPDATE it signs, in the same session.
    let signed: Vec<&Line> = events
        .iter()
        .filter(|e| e.operation == "E_SIGNATURE" && e.success)
        .collect();
    assert_eq!(signed.len(), 18);
    for signature in &signed {
        assert_eq!(signature.class, "APP");
        let name = &signature.custom["signer_name"];
        assert!(
            OPERATORS
                .iter()
                .any(|o| o.name == name && o.id == signature.user)
        );
        assert_eq!(signature.custom["meaning"], "approved setpoint");
        let change = events
            .iter()
            .rev()
            .find(|e| e.seq < signature.seq && e.session_id == signature.session_id)
            .unwrap();
        assert!(
            change.operation == "UPDATE" || change.operation == "INSERT",
            "{}",
            change.operation
        );
    }
    let rejected = events
        .iter()
        .filter(|e| e.operation == "E_SIGNATURE" && !e.success)
        .count();
    assert_eq!(rejected, 9);
    // The first sync's acknowledgement is itself in the trail the second sync shipped.
    let acks: Vec<&Line> = events
        .iter()
        .filter(|e| e.operation == "AUDIT_SYNC")
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0].custom["synced_through"],
        report.syncs[0].size.to_string()
    );
}

#[test]
fn a_batch_damaged_in_transit_is_rejected_and_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::start(&dir.path().join("device")).unwrap();
    let [ana, _] = &OPERATORS;
    for value in [150.0, 155.0, 160.0] {
        assert!(
            device
                .change_parameter(ana, "4711", "oven/temp", value, "degC", "approved")
                .unwrap()
        );
    }
    let scada = Scada::new(
        &dir.path().join("device/keys/line-3.pub"),
        &dir.path().join("scada"),
    )
    .unwrap();
    let outbox = dir.path().join("outbox");
    let (batch, record) = device.write_sync_batch(&outbox).unwrap();

    // A changed value inside the compressed batch: SCADA rejects it, keeps no receipt.
    let mut text = String::new();
    use std::io::{Read, Write};
    flate2::read::GzDecoder::new(std::fs::File::open(&batch).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let forged = text.replacen("155 degC", "255 degC", 1);
    assert_ne!(forged, text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(forged.as_bytes()).unwrap();
    std::fs::write(&batch, gz.finish().unwrap()).unwrap();
    let error = scada.receive(&batch).unwrap_err();
    assert!(format!("{error:#}").contains("tampered"), "{error:#}");
    assert!(scada.receipt().unwrap().is_none());

    // Not acknowledged, so the device sends the same range again; it is accepted.
    assert_eq!(device.synced_through().unwrap(), 0);
    let (batch, again) = device.write_sync_batch(&outbox).unwrap();
    assert_eq!(again.after, 0);
    assert!(again.size >= record.size);
    assert_eq!(scada.receive(&batch).unwrap(), again.size);
    device.acknowledge(&again).unwrap();
    assert_eq!(device.synced_through().unwrap(), again.size);

    // A batch signed by another key (an impostor device) is rejected.
    let (next, _) = device.write_sync_batch(&outbox).unwrap();
    let impostor = Scada::new(
        &{
            let other = dir.path().join("other");
            heliosdb_lite::checkpoint::SignerKey::generate("line-3")
                .unwrap()
                .write_files(&other)
                .unwrap()
                .1
        },
        &dir.path().join("scada-2"),
    )
    .unwrap();
    assert!(impostor.receive(&next).is_err());
}
