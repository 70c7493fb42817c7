//! The binary's command line and configuration errors.

use std::process::Command;

fn cuecast() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cuecast"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// `cuecast serve` on ephemeral ports with templates from `dir` (expected to fail at startup).
fn serve_with_pipelines(dir: &std::path::Path) -> std::process::Output {
    cuecast()
        .arg("serve")
        .env("CUECAST_MEDIA_PIPELINES_DIR", dir)
        .env("CUECAST_RTMP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_RTMPS_LISTEN", "127.0.0.1:0")
        .env("CUECAST_HTTP_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SRT_LISTEN", "127.0.0.1:0")
        .env("CUECAST_SERVER_DATA_DIR", dir.join("data"))
        .output()
        .unwrap()
}

#[test]
fn bad_config_file_fails_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[rtmp]\nlisten = \"nowhere\"\n").unwrap();
    let output = cuecast()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("rtmp.listen"), "{stderr}");
    assert!(stderr.contains("invalid socket address"), "{stderr}");
}

#[test]
fn bad_environment_override_names_the_variable() {
    let output = cuecast()
        .args(["check-config"])
        .env("CUECAST_HLS_SEGMENT_DURATION_S", "-1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CUECAST_HLS_SEGMENT_DURATION_S"),
        "{stderr}"
    );
    assert!(stderr.contains("hls.segment_duration_s"), "{stderr}");
}

#[test]
fn default_config_is_valid() {
    let output = cuecast().arg("check-config").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_reports_the_rtmps_listener_and_reads_its_certificate() {
    let output = cuecast().arg("check-config").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("rtmps: 0.0.0.0:1936 with a self-signed development certificate for localhost, 127.0.0.1, ::1"),
        "{stdout}"
    );
    let output = cuecast()
        .arg("check-config")
        .env("CUECAST_RTMPS_ENABLED", "false")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("rtmps: off"));

    // Configured files are read: a missing one fails naming the key and the file.
    let output = cuecast()
        .arg("check-config")
        .env("CUECAST_RTMPS_CERT_FILE", "/nonexistent/fullchain.pem")
        .env("CUECAST_RTMPS_KEY_FILE", "/nonexistent/privkey.pem")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rtmps.cert_file") && stderr.contains("/nonexistent/fullchain.pem"),
        "{stderr}"
    );
    // Only one of the pair.
    let output = cuecast()
        .arg("check-config")
        .env("CUECAST_RTMPS_CERT_FILE", "/etc/fullchain.pem")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rtmps.key_file"), "{stderr}");
}

#[test]
fn broken_pipeline_template_fails_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("passthrough.pipeline"),
        "appsrc name=video_src ! h264parse ! no_such_muxer ! appsink name=hls_source\nappsrc name=audio_src ! fakesink",
    )
    .unwrap();
    let output = serve_with_pipelines(dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("passthrough.pipeline"), "{stderr}");
    assert!(stderr.contains("no_such_muxer"), "{stderr}");
}

#[test]
fn broken_ladder_template_fails_startup_naming_it_and_the_element() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rung.pipeline"),
        "decoded. ! queue ! videoscale ! x265_not_here name=encoder_{name} ! appsink name=hls_{name}",
    )
    .unwrap();
    let output = serve_with_pipelines(dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rung.pipeline"), "{stderr}");
    assert!(stderr.contains("x265_not_here"), "{stderr}");

    // A placeholder the ladder does not fill, in the head template.
    std::fs::remove_file(dir.path().join("rung.pipeline")).unwrap();
    std::fs::write(
        dir.path().join("ladder.pipeline"),
        "appsrc name=ladder_src ! {decoder} ! videoflip method={flip} ! tee name=decoded",
    )
    .unwrap();
    let output = serve_with_pipelines(dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ladder.pipeline") && stderr.contains("{flip}"),
        "{stderr}"
    );

    // With the ladder off, the ladder templates are not used (nor checked).
    let output = cuecast()
        .arg("check-config")
        .env("CUECAST_MEDIA_LADDER", "[]")
        .output()
        .unwrap();
    assert!(output.status.success());
}

/// Orders in the Instacart layout: `users` shoppers with 4 orders each, everyone buying
/// `staple` every time and one product of their own.
fn orders_csv(users: usize) -> String {
    let mut csv = String::from("order_id,user_id,order_number,product_id,add_to_cart_order\n");
    let mut order = 0;
    for user in 0..users {
        for number in 1..=4 {
            order += 1;
            csv.push_str(&format!("{order},u{user},{number},staple,1\n"));
            csv.push_str(&format!("{order},u{user},{number},own{user},2\n"));
        }
    }
    csv
}

#[test]
fn recs_eval_prints_one_json_line_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    std::fs::write(&path, orders_csv(5)).unwrap();
    let output = cuecast()
        .args(["recs", "eval", "--tune", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let models: Vec<&str> = lines.iter().filter_map(|l| l["model"].as_str()).collect();
    assert_eq!(
        models,
        [
            "popularity",
            "p-topfreq",
            "tifu-knn",
            "tifu-knn-k100",
            "up-cf",
            "for-you",
            "fbt-cooccurrence",
            "fbt-lift"
        ]
    );
    let tuned: Vec<&str> = lines.iter().filter_map(|l| l["tune"].as_str()).collect();
    assert_eq!(
        tuned,
        [
            "explore",
            "recency",
            "fusion",
            "votes",
            "ease",
            "repeat",
            "switch",
            "propensity",
            "time",
            "slots",
            "chosen"
        ]
    );
    // Each shopper's last order is {staple, own product}: the repeat models find both.
    let for_you = lines.iter().find(|l| l["model"] == "for-you").unwrap();
    assert_eq!(for_you["recall@10"], 1.0);
    assert_eq!(for_you["users"], 5);
    assert_eq!(for_you["explore_users"], 0);
    // The goal is reported either way; --check on data this far from the reference fails.
    assert!(stderr.contains("goal"), "{stderr}");
    let checked = cuecast()
        .args(["recs", "eval", "--check", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("check: popularity hr@10"), "{stderr}");
    // --check-goal (benches/recs/eval.sh passes it) fails when for-you does not beat the
    // baselines: here TIFU-KNN finds the whole last order too (Recall@10 1 against 1).
    let goal = cuecast()
        .args(["recs", "eval", "--check-goal", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(goal.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&goal.stderr);
    assert!(
        stderr.contains("goal missed: for-you recall@10 over tifu-knn"),
        "{stderr}"
    );
}

#[test]
fn recs_eval_holdout_scores_an_earlier_order_and_refuses_the_test_only_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    // Each shopper's last (5th) order adds a product of their own they never bought before.
    let mut csv = orders_csv(5);
    for user in 0..5 {
        csv.push_str(&format!("{},u{user},5,late{user},1\n", 100 + user));
    }
    std::fs::write(&path, csv).unwrap();
    let for_you = |args: &[&str]| {
        let output = cuecast()
            .args(["recs", "eval"])
            .args(args)
            .arg("--orders")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|l| l["model"] == "for-you")
            .unwrap()
    };
    // The test split holds out the 5th order: a new product for every shopper.
    assert_eq!(for_you(&[])["explore_users"], 5);
    // --holdout 1 holds out the 4th ({staple, own}), trained on the three before.
    let earlier = for_you(&["--holdout", "1"]);
    assert_eq!(earlier["explore_users"], 0);
    assert_eq!(earlier["recall@10"], 1.0);
    // The reference check and the tuning belong to the test split.
    for flag in ["--check", "--tune"] {
        let refused = cuecast()
            .args(["recs", "eval", "--holdout", "1", flag, "--orders"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{flag}");
    }
}

#[test]
fn recs_eval_tune_only_prints_the_validation_grid_and_scores_no_model_on_test() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    std::fs::write(&path, orders_csv(5)).unwrap();
    let output = cuecast()
        .args(["recs", "eval", "--tune", "--tune-only", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.iter().all(|l| l.get("model").is_none()), "{stdout}");
    assert_eq!(lines.last().unwrap()["tune"], "chosen");
    // Three validation folds by default: each of the 5 shoppers' orders 3, 2 and 1 held out
    // once (never order 4, the test split's).
    assert!(lines.iter().all(|l| l["folds"] == 3), "{stdout}");
    assert_eq!(lines.last().unwrap()["validation"]["users"], 15);
    // --folds 1: the single second-to-last split.
    let one = cuecast()
        .args([
            "recs",
            "eval",
            "--tune",
            "--tune-only",
            "--folds",
            "1",
            "--orders",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(one.status.success());
    let stdout = String::from_utf8_lossy(&one.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["folds"].as_u64(), last["validation"]["users"].as_u64()),
        (Some(1), Some(5))
    );
    // No fold at all is refused, and so are folds without --tune.
    for args in [&["--tune", "--folds", "0"][..], &["--folds", "2"]] {
        let refused = cuecast()
            .args(["recs", "eval", "--orders"])
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
    }
    // Nothing on the test split: no goal either.
    assert!(!stderr.contains("goal"), "{stderr}");
    // --tune-only needs --tune.
    let refused = cuecast()
        .args(["recs", "eval", "--tune-only", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn recs_eval_names_the_bad_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    let mut csv = orders_csv(2);
    csv.push_str("99,u0,five,staple,1\n");
    std::fs::write(&path, csv).unwrap();
    let output = cuecast()
        .args(["recs", "eval", "--orders"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 18, column `order_number`: not a whole number"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
