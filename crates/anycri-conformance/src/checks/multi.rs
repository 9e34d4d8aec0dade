//! Several containers in one pod: they share the pod's network, and each has its own log
//! and its own processes for exec.

use super::prelude::*;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "pod::multi_container::shared_network",
            "a container reaches a server in another container of its pod on 127.0.0.1",
            shared_network
        )
        .critest("[k8s.io] Multiple Containers [Conformance] when running multiple containers in a pod should support network")
        .needs(&[Need::Processes]),
        check!(
            "pod::multi_container::logs_and_exec",
            "each container of a pod has its own log, and ExecSync runs in the container asked for",
            logs_and_exec
        ),
    ]
}

pub(crate) const HTTPD: &str =
    "mkdir -p /www && echo served-by-anycri > /www/index.html && exec httpd -f -p 8080 -h /www";

async fn shared_network(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    t.create_start(
        &pod_id,
        &pod,
        t.container().command(["sh", "-c", HTTPD]).build(),
    )
    .await?;
    let client = t.create_start(&pod_id, &pod, t.container().build()).await?;
    let body = poll(
        Duration::from_secs(15),
        "the server in the other container never answered",
        || async {
            let out = t
                .exec(&client, &["wget", "-qO-", "http://127.0.0.1:8080/"])
                .await?;
            Ok(out.success().then(|| out.stdout_str()))
        },
    )
    .await?;
    ensure_eq!(
        body,
        "served-by-anycri\n",
        "page served by the other container"
    );
    Ok(())
}

async fn logs_and_exec(t: TestContext) -> CheckResult {
    let pod = t.pod().build();
    let pod_id = t.run_pod(&pod).await?;
    let a = t
        .create_start(
            &pod_id,
            &pod,
            t.container()
                .command(["sh", "-c", "echo from-a; sleep 3600"])
                .build(),
        )
        .await?;
    let b = t
        .create_start(
            &pod_id,
            &pod,
            t.container()
                .command(["sh", "-c", "echo from-b; sleep 3600"])
                .build(),
        )
        .await?;
    for (id, want) in [(&a, "from-a"), (&b, "from-b")] {
        let lines = poll(
            Duration::from_secs(10),
            &format!("{want} never reached its log"),
            || async {
                let lines = t
                    .rt()
                    .read_container_log(id)
                    .await
                    .step("reading the log")?;
                Ok((!lines.is_empty()).then_some(lines))
            },
        )
        .await?;
        let text: Vec<&str> = lines.iter().map(|l| l.content.as_str()).collect();
        ensure_eq!(text, vec![want], "log of the container");
    }
    ensure!(
        t.status(&a).await?.log_path != t.status(&b).await?.log_path,
        "both containers share a log path"
    );
    for id in [&a, &b] {
        let out = t.exec(id, &["echo", id]).await?;
        ensure_eq!(out.stdout_str().trim_end(), id.as_str(), "exec output");
    }
    Ok(())
}
