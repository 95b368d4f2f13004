//! Datasets end to end: the qa-feedback fixture imported through the API, a dataset built from
//! the negative-feedback filter, items added by API (a planted near-duplicate, planted personal
//! data and secrets, a pairwise vote, a rating contrast), every export format checked line by
//! line, the seeded split, versions, and the CLI export through the real binary.

use feedloop::cli::ServerArgs;
use feedloop::cli::import::{ImportArgs, ImportFormat, import};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::common::{TestServer, assert_error};

const PLANTED_PII: [&str; 7] = [
    "jane.doe@example.com",
    "+1 415 555 2671",
    "4111 1111 1111 1111",
    "203.0.113.7",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Bearer abc123def456ghi789jkl",
];

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path)
}

/// The qa-feedback sample imported, indexed, and a dataset `qa` made from its negative feedback.
async fn qa_dataset() -> TestServer {
    let server = TestServer::start().await;
    let input = server.dir.path().join("qa.json");
    std::fs::copy(fixture("qa_feedback/dev_feedback_sample.json"), &input).unwrap();
    import(&ImportArgs {
        server: ServerArgs {
            server: server.base.clone(),
            api_key: server.key.clone(),
        },
        path: input,
        format: ImportFormat::QaFeedback,
        batch_size: 200,
        restart: false,
    })
    .await
    .unwrap();
    server.wait_until_indexed(400).await;
    let (status, created) = server
        .post(
            "/api/v1/datasets",
            json!({"name": "qa", "description": "negative qa"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["num_items"], 0);
    server
}

async fn from_feedback(server: &TestServer, filter: Value) -> Value {
    let (status, report) = server
        .post(
            "/api/v1/datasets/qa/items/from-feedback",
            json!({ "filter": filter, "author": "ana" }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    report
}

async fn add_items(server: &TestServer, items: Value) -> Value {
    let (status, receipt) = server
        .post(
            "/api/v1/datasets/qa/items",
            json!({ "items": items, "author": "bo" }),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    receipt
}

/// An export with `split=all`: the lines of each split (after any header) and the manifest.
async fn export_all(
    server: &TestServer,
    query: &str,
) -> (Option<String>, Vec<String>, Vec<String>, Value) {
    let response = server
        .http
        .get(format!(
            "{}/api/v1/datasets/qa/export?split=all&{query}",
            server.base
        ))
        .header("authorization", format!("Bearer {}", server.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let (mut header, mut train, mut validation, mut manifest) = (None, vec![], vec![], None);
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if let Some(found) = event.get("manifest") {
            manifest = Some(found.clone());
        } else if let Some(found) = event.get("header") {
            header = Some(found.as_str().unwrap().to_owned());
        } else {
            let text = event["line"].as_str().unwrap().to_owned();
            match event["split"].as_str().unwrap() {
                "train" => train.push(text),
                "validation" => validation.push(text),
                other => panic!("unknown split {other}"),
            }
        }
    }
    (
        header,
        train,
        validation,
        manifest.expect("the manifest ends the export"),
    )
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// Item id → split, from a manifest's provenance.
fn splits(manifest: &Value) -> BTreeMap<String, String> {
    manifest["provenance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["item_ids"][0].as_str().unwrap().to_owned(),
                p["split"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Traces for a pairwise vote (b preferred over a) and a rating contrast (the same prompt
/// answered well and badly), tagged `extra`.
async fn vote_and_contrast(server: &TestServer) {
    let trace = |id: &str, input: &str, output: &str| json!({"id": id, "input": input, "output": output, "tags": ["extra"]});
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({
                "traces": [
                    trace("pw-a", "How do I reset my password?", "You cannot."),
                    trace("pw-b", "How do I reset my password?", "Open settings, then security, then reset."),
                    trace("hours-good", "What are your opening hours on Saturday?", "9:00 to 13:00."),
                    trace("hours-bad", "what are your opening hours on saturday", "We never open."),
                ],
                "feedback": [
                    {"id": "vote-1", "trace_id": "pw-a", "kind": "rating", "author": "ana",
                     "rating": {"value": -1.0, "min": -1.0, "max": 1.0, "compared_to": "pw-b"}},
                    {"id": "up-1", "trace_id": "hours-good", "kind": "rating", "rating": {"value": 1.0}},
                    {"id": "down-1", "trace_id": "hours-bad", "kind": "rating", "rating": {"value": 0.0}},
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_dataset_from_negative_feedback_exports_in_every_format() {
    let server = qa_dataset().await;

    // Built from the negative-feedback filter; a second run adds nothing.
    let report = from_feedback(&server, json!({"negative_feedback": "true"})).await;
    let num_items = report["created"].as_u64().unwrap();
    assert!(num_items > 100, "{report}");
    assert_eq!(report["items"], report["created"]);
    let again = from_feedback(&server, json!({"negative_feedback": "true"})).await;
    assert_eq!(
        (again["created"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(num_items))
    );

    // Planted by API: a near-duplicate of a stored question, and personal data and secrets.
    let (_, page) = server.get("/api/v1/datasets/qa/items?limit=1").await;
    let first = &page["items"][0];
    let duplicate_input = first["input"].as_str().unwrap().to_uppercase();
    let receipt = add_items(
        &server,
        json!([
            {"id": "planted-duplicate", "input": duplicate_input,
             "ideal_output": "a planted answer", "rejected_output": "a planted wrong answer"},
            {"id": "planted-pii",
             "input": format!("I am {} and my phone is {}; my card {} was refused", PLANTED_PII[0], PLANTED_PII[1], PLANTED_PII[2]),
             "context": {"system_prompt": format!("The caller connects from {}.", PLANTED_PII[3])},
             "ideal_output": format!("Never paste keys such as {} or tokens like {} or {}.", PLANTED_PII[4], PLANTED_PII[5], PLANTED_PII[6]),
             "rejected_output": "Sure, send me your card number.",
             "categories": ["unsafe"]}
        ]),
    )
    .await;
    assert_eq!(receipt["items"][0]["status"], "created");
    // The same ids again are duplicates.
    let receipt = add_items(
        &server,
        json!([{"id": "planted-duplicate", "input": duplicate_input,
                "ideal_output": "a planted answer", "rejected_output": "a planted wrong answer"}]),
    )
    .await;
    assert_eq!(receipt["items"][0]["status"], "duplicate");

    vote_and_contrast(&server).await;
    let extra = from_feedback(&server, json!({"tag": "extra"})).await;
    // The vote makes a pair on pw-a; the two ratings make a liked and a disliked answer.
    assert_eq!(extra["created"], 3, "{extra}");

    let everything_scrubbed = |lines: &[String]| {
        for line in lines {
            for planted in PLANTED_PII {
                assert!(!line.contains(planted), "{planted:?} leaked: {line}");
            }
        }
    };

    // OpenAI chat fine-tuning.
    let (header, train, validation, manifest) = export_all(&server, "format=openai&seed=1").await;
    assert_eq!(header, None);
    assert!(!train.is_empty() && !validation.is_empty());
    for line in train.iter().chain(&validation) {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(keys(&record), BTreeSet::from(["messages"]), "{line}");
        let roles: Vec<&str> = record["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(keys(m), BTreeSet::from(["content", "role"]));
                m["role"].as_str().unwrap()
            })
            .collect();
        assert!(
            roles == ["user", "assistant"] || roles == ["system", "user", "assistant"],
            "{line}"
        );
    }
    everything_scrubbed(&train);
    everything_scrubbed(&validation);
    let counts = &manifest["counts"];
    assert_eq!(counts["train"].as_u64().unwrap(), train.len() as u64);
    assert_eq!(
        counts["validation"].as_u64().unwrap(),
        validation.len() as u64
    );
    assert_eq!(manifest["version"], "latest");
    assert_eq!(manifest["format"], "openai");
    // The planted duplicate is removed in favour of the item added first.
    let removed = manifest["removed_duplicates"].as_array().unwrap();
    let planted = removed
        .iter()
        .find(|r| r["item_id"] == "planted-duplicate")
        .expect("the planted duplicate is removed");
    assert_eq!(planted["duplicate_of"], first["id"]);
    assert!(!splits(&manifest).contains_key("planted-duplicate"));
    assert!(splits(&manifest).contains_key("planted-pii"));
    // Every planted finding was scrubbed and counted.
    let pii = &manifest["pii"];
    for kind in ["email", "phone", "card_number", "ip_address"] {
        assert!(pii[kind].as_u64().unwrap() >= 1, "{kind}: {pii}");
    }
    assert!(pii["secret"].as_u64().unwrap() >= 3, "{pii}");
    let pii_line = train
        .iter()
        .chain(&validation)
        .find(|l| l.contains("was refused"))
        .unwrap();
    assert!(
        pii_line.contains("[EMAIL]") && pii_line.contains("[CARD_NUMBER]"),
        "{pii_line}"
    );
    // Provenance names the traces and feedback behind each line.
    let with_trace = manifest["provenance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| !p["trace_ids"].as_array().unwrap().is_empty())
        .unwrap();
    assert!(!with_trace["feedback_ids"].as_array().unwrap().is_empty());

    // SFT messages.
    let (_, train, validation, _) = export_all(&server, "format=sft&seed=1").await;
    assert!(!train.is_empty());
    for line in train.iter().chain(&validation) {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(keys(&record), BTreeSet::from(["messages"]));
        let messages = record["messages"].as_array().unwrap();
        assert_eq!(messages.last().unwrap()["role"], "assistant");
        assert_eq!(messages[messages.len() - 2]["role"], "user");
    }
    everything_scrubbed(&train);

    // Preference pairs: from corrections, the pairwise vote and the rating contrast.
    let (_, train, validation, manifest) = export_all(&server, "format=preference&seed=1").await;
    let pairs: Vec<Value> = train
        .iter()
        .chain(&validation)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for pair in &pairs {
        assert_eq!(
            keys(pair),
            BTreeSet::from(["chosen", "prompt", "rejected"]),
            "{pair}"
        );
        assert_ne!(pair["chosen"], pair["rejected"], "{pair}");
        assert!(!pair["prompt"].as_str().unwrap().is_empty());
    }
    let vote = pairs
        .iter()
        .find(|p| p["prompt"] == "How do I reset my password?")
        .expect("the pairwise vote makes a pair");
    assert_eq!(vote["chosen"], "Open settings, then security, then reset.");
    assert_eq!(vote["rejected"], "You cannot.");
    let contrast = pairs
        .iter()
        .find(|p| p["chosen"] == "9:00 to 13:00.")
        .expect("the rating contrast makes a pair");
    assert_eq!(contrast["rejected"], "We never open.");
    assert_eq!(manifest["counts"]["contrast_pairs"], 1);
    assert!(
        pairs.len() > 10,
        "corrections make pairs too: {}",
        pairs.len()
    );
    everything_scrubbed(&train);
    everything_scrubbed(&validation);

    // CSV.
    let (header, train, validation, manifest) = export_all(&server, "format=csv&seed=1").await;
    assert_eq!(
        header.as_deref(),
        Some("id,input,system_prompt,ideal_output,rejected_output,source,categories,trace_id")
    );
    let text = format!("{}\n{}\n", header.unwrap(), train.join("\n"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), train.len());
    assert!(rows.iter().all(|row| row.len() == 8));
    everything_scrubbed(&train);
    everything_scrubbed(&validation);
    // Every kept item is a row: the items less the duplicates.
    let counts = &manifest["counts"];
    assert_eq!(
        counts["train"].as_u64().unwrap() + counts["validation"].as_u64().unwrap(),
        counts["items"].as_u64().unwrap() - counts["duplicates_removed"].as_u64().unwrap()
    );

    // A plain single-split body is the same lines, ready for a trainer.
    let response = server
        .http
        .get(format!(
            "{}/api/v1/datasets/qa/export?format=openai&seed=1&split=validation",
            server.base
        ))
        .header("authorization", format!("Bearer {}", server.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let (_, _, validation, _) = export_all(&server, "format=openai&seed=1").await;
    assert_eq!(body.lines().collect::<Vec<_>>(), validation);
}

#[tokio::test]
async fn the_split_is_stable_for_a_seed_and_versions_freeze_items() {
    let server = qa_dataset().await;
    from_feedback(&server, json!({"negative_feedback": "true"})).await;
    let manifest = |query: &'static str| {
        let server = &server;
        async move {
            let (status, manifest) = server
                .get(&format!(
                    "/api/v1/datasets/qa/export/manifest?format=csv&{query}"
                ))
                .await;
            assert_eq!(status, 200, "{manifest}");
            manifest
        }
    };
    let seed_1 = splits(&manifest("seed=1").await);
    assert_eq!(seed_1, splits(&manifest("seed=1").await));
    let seed_2 = splits(&manifest("seed=2").await);
    assert_eq!(seed_1.len(), seed_2.len());
    assert_ne!(seed_1, seed_2);
    assert!(seed_1.values().any(|s| s == "validation"));
    // A larger validation share takes about that share.
    let half = splits(&manifest("seed=1&validation_fraction=0.5").await);
    let num_validation = half.values().filter(|s| *s == "validation").count();
    assert!(num_validation * 3 > half.len() && num_validation * 3 < half.len() * 2);

    // Freeze a version, then add items: existing items keep their side, the version its set.
    let (status, v1) = server
        .post(
            "/api/v1/datasets/qa/versions",
            json!({"author": "ana", "note": "first"}),
        )
        .await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version"], 1);
    let new_items: Vec<Value> = (0..20)
        .map(|i| json!({"input": format!("new question number {i} about topic {}", i * 7919), "ideal_output": format!("answer {i}")}))
        .collect();
    add_items(&server, Value::Array(new_items)).await;
    let after = splits(&manifest("seed=1").await);
    assert_eq!(after.len(), seed_1.len() + 20);
    for (id, split) in &seed_1 {
        assert_eq!(&after[id], split, "{id} moved");
    }
    let frozen = manifest("seed=1&version=1").await;
    assert_eq!(frozen["version"], "1");
    assert_eq!(frozen["counts"]["items"], v1["num_items"]);
    assert_eq!(splits(&frozen), seed_1);
    // Exporting latest creates no version.
    let (_, versions) = server.get("/api/v1/datasets/qa/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    let (_, dataset) = server.get("/api/v1/datasets/qa").await;
    assert_eq!(dataset["latest_version"], 1);
    assert_eq!(
        dataset["num_items"].as_u64().unwrap(),
        v1["num_items"].as_u64().unwrap() + 20
    );
}

#[tokio::test]
async fn bad_dataset_requests_are_named_and_change_nothing() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .post("/api/v1/datasets", json!({"name": "d"}))
            .await
            .0,
        201
    );
    assert_error(
        &server.post("/api/v1/datasets", json!({"name": "d"})).await,
        409,
        "conflict",
        Some("name"),
    );
    assert_error(
        &server
            .post("/api/v1/datasets", json!({"name": "a/b"}))
            .await,
        422,
        "invalid_value",
        Some("name"),
    );
    assert_error(
        &server
            .post(
                "/api/v1/datasets/d/items",
                json!({"items": [{"input": "q"}]}),
            )
            .await,
        422,
        "invalid_value",
        Some("items[0].ideal_output"),
    );
    assert_error(
        &server
            .post(
                "/api/v1/datasets/d/items",
                json!({"items": [{"input": "q", "ideal_output": "a", "extra": 1}]}),
            )
            .await,
        422,
        "invalid_field",
        Some("items[0].extra"),
    );
    assert_error(
        &server
            .post(
                "/api/v1/datasets/missing/items",
                json!({"items": [{"input": "q", "ideal_output": "a"}]}),
            )
            .await,
        404,
        "dataset_not_found",
        None,
    );
    assert_error(
        &server.get("/api/v1/datasets/d/export").await,
        400,
        "invalid_query",
        Some("format"),
    );
    assert_error(
        &server.get("/api/v1/datasets/d/export?format=xml").await,
        400,
        "invalid_query",
        Some("format"),
    );
    assert_error(
        &server
            .get("/api/v1/datasets/d/export?format=csv&pii=maybe")
            .await,
        400,
        "invalid_query",
        Some("pii"),
    );
    assert_error(
        &server
            .get("/api/v1/datasets/d/export?format=csv&version=3")
            .await,
        404,
        "dataset_not_found",
        Some("version"),
    );
    assert_error(
        &server.get("/api/v1/datasets/nope/export?format=csv").await,
        404,
        "dataset_not_found",
        None,
    );
    // Reading keys read; only admin keys write.
    let reader = server
        .key_with_role(feedloop_core::auth::KeyRole::Read)
        .await;
    assert_eq!(server.get_as(&reader, "/api/v1/datasets").await.0, 200);
    assert_error(
        &server
            .post_as(
                &reader,
                "/api/v1/datasets/d/items",
                json!({"items": [{"input": "q", "ideal_output": "a"}]}),
            )
            .await,
        403,
        "forbidden",
        None,
    );
    let (_, dataset) = server.get("/api/v1/datasets/d").await;
    assert_eq!(dataset["num_items"], 0);
}

#[tokio::test]
async fn the_cli_exports_a_dataset_into_a_folder() {
    let server = qa_dataset().await;
    from_feedback(&server, json!({"negative_feedback": "true"})).await;
    let out = server.dir.path().join("export");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_feedloop"));
    command
        .args([
            "datasets", "export", "qa", "--format", "openai", "--seed", "3", "--out",
        ])
        .arg(&out)
        .env("FEEDLOOP_SERVER", &server.base)
        .env("FEEDLOOP_API_KEY", &server.key);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("exported"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    for split in ["train", "validation"] {
        let text = std::fs::read_to_string(out.join(format!("{split}.jsonl"))).unwrap();
        assert_eq!(
            text.lines().count() as u64,
            manifest["counts"][split].as_u64().unwrap()
        );
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            assert_eq!(keys(&record), BTreeSet::from(["messages"]));
        }
    }
    assert_eq!(manifest["options"]["seed"], 3);
}
