//! Live: push the test images to the environment's registry (`REGISTRY`), then pull every
//! one of them, by each tag and by digest, through the real containerd CRI and through the
//! Docker shim; check that ImageStatus reports the image ID and the user from each config,
//! and that the web server image serves its page to a container beside it (`wget` through
//! ExecSync). Needs `scripts/runtime-env up`; skips with a reason without it, fails under
//! `ANYCRI_REQUIRE_LIVE=1`. Everything pulled and created here is removed again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anycri::api::{
    ContainerState, ImageSpec, ImageStatusRequest, PodSandboxFilter, PullImageRequest,
};
use anycri::{
    ContainerConfigBuilder, Error, ImageService, ImageServiceExt, PodSandboxConfigBuilder, Result,
    RuntimeService, RuntimeServiceExt,
};
use anycri_images::{
    BuiltImage, ImageRef, ManifestFormat, RegistryClient, TestImageKind, TestImages,
};
use anycri_testenv::{env_value, skip_or_fail};

/// Our own namespace and variant: image IDs of their own, so removing what this test pulled
/// never removes an image another user of the same runtime pulled under another name.
const PREFIX: &str = "anycri-images-live";
const VARIANT: &str = "images-live";
const RUN_LABEL: &str = "anycri.test/images-live";

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Error::internal(format!($($msg)+)));
        }
    };
}

/// Build (our variant) and push; None after skipping when there is no registry.
async fn pushed() -> Option<(Vec<BuiltImage>, TestImages)> {
    let Some(registry) = env_value("REGISTRY") else {
        skip_or_fail("REGISTRY is not set and no runtime-env file was found");
        return None;
    };
    let client = RegistryClient::new(&registry).expect("registry address");
    if let Err(e) = client.ping().await {
        skip_or_fail(&format!("registry {registry} does not answer: {e}"));
        return None;
    }
    let built = tokio::task::spawn_blocking(|| {
        let busybox = anycri_images::Busybox::locate()?;
        anycri_images::build_variant(
            &busybox,
            ManifestFormat::Oci,
            &TestImageKind::all(),
            Some(VARIANT),
        )
    })
    .await
    .unwrap()
    .expect("build the test images");
    let images = anycri_images::push_all(&client, PREFIX, &built)
        .await
        .expect("push the test images");
    Some((built, images))
}

/// Docker v2 schema 2 media types: both runtimes pull them too (checked with two images in
/// a namespace and variant of their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_media_types_pull_on_both_runtimes() {
    let (Some(registry), Some(containerd), Some(docker), Some(pause)) = (
        env_value("REGISTRY"),
        env_value("CONTAINERD_ENDPOINT"),
        env_value("ANYCRI_DOCKER_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
    ) else {
        skip_or_fail(
            "REGISTRY, CONTAINERD_ENDPOINT, ANYCRI_DOCKER_ENDPOINT or ANYCRI_PAUSE_IMAGE unset",
        );
        return;
    };
    let client = RegistryClient::new(&registry).unwrap();
    if let Err(e) = client.ping().await {
        skip_or_fail(&format!("registry {registry} does not answer: {e}"));
        return;
    }
    let built = tokio::task::spawn_blocking(|| {
        let busybox = anycri_images::Busybox::locate()?;
        anycri_images::build_variant(
            &busybox,
            ManifestFormat::Docker,
            &[TestImageKind::Busybox, TestImageKind::UserUid],
            Some("images-live-docker"),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        built[0].image.manifest.media_type,
        anycri_images::image::media_types::DOCKER_MANIFEST
    );
    let images = anycri_images::push_all(&client, "anycri-images-live-docker", &built)
        .await
        .unwrap();
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let docker = format!("{docker}?pause_image={pause}&state_dir={env_dir}/anycri-docker-img");
    for endpoint in [containerd, docker] {
        let connected = match anycri::connect(&endpoint).await {
            Ok(c) => c,
            Err(e) => {
                skip_or_fail(&format!("{endpoint} does not answer: {e}"));
                continue;
            }
        };
        let result = pull_and_inspect(connected.image.as_ref(), &images).await;
        for reference in images.all_references() {
            connected
                .image
                .remove_image_if_present(&reference)
                .await
                .unwrap_or_else(|e| panic!("{endpoint}: removing {reference}: {e}"));
        }
        result.unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_serves_every_tag_with_the_built_digest() {
    let Some((built, images)) = pushed().await else {
        return;
    };
    let registry = env_value("REGISTRY").unwrap();
    let client = RegistryClient::new(&registry).unwrap();
    for b in &built {
        let repository = format!("{PREFIX}/{}", b.name);
        for tag in &b.tags {
            let digest = client.manifest_digest(&repository, tag).await.unwrap();
            assert_eq!(
                digest.as_ref(),
                Some(b.image.digest()),
                "{repository}:{tag}"
            );
        }
        // the blobs are all there
        for blob in b.image.layers.iter().chain([&b.image.config]) {
            assert!(client.blob_exists(&repository, &blob.digest).await.unwrap());
        }
    }
    assert_eq!(
        images.busybox.reference(),
        format!("{registry}/{PREFIX}/busybox:1.0")
    );
    // pushing again uploads nothing
    let again = client
        .push_image(
            &format!("{PREFIX}/busybox"),
            &built[0].image,
            &built[0].tags,
        )
        .await
        .unwrap();
    assert_eq!((again.uploaded, again.mounted), (0, 0), "{again:?}");
    let missing = client
        .manifest_digest(&format!("{PREFIX}/busybox"), "no-such-tag")
        .await
        .unwrap();
    assert_eq!(missing, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_pulls_every_image_and_runs_the_web_server() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return;
    };
    let connected = match anycri::connect(&endpoint).await {
        Ok(c) => c,
        Err(e) => {
            skip_or_fail(&format!("containerd at {endpoint} does not answer: {e}"));
            return;
        }
    };
    let Some((_, images)) = pushed().await else {
        return;
    };
    check_runtime("containerd", connected.runtime, connected.image, &images).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_shim_pulls_every_image_and_runs_the_web_server() {
    let Some(endpoint) = env_value("ANYCRI_DOCKER_ENDPOINT") else {
        skip_or_fail("ANYCRI_DOCKER_ENDPOINT is not set and no runtime-env file was found");
        return;
    };
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let Some(pause) = env_value("ANYCRI_PAUSE_IMAGE") else {
        skip_or_fail("ANYCRI_PAUSE_IMAGE is not set");
        return;
    };
    let uri = format!("{endpoint}?pause_image={pause}&state_dir={env_dir}/anycri-docker-img");
    let connected = match anycri::connect(&uri).await {
        Ok(c) => c,
        Err(e) => {
            skip_or_fail(&format!("Docker at {endpoint} does not answer: {e}"));
            return;
        }
    };
    let Some((_, images)) = pushed().await else {
        return;
    };
    check_runtime("docker", connected.runtime, connected.image, &images).await;
}

/// Run the checks, then remove what they created and pulled whatever the outcome.
async fn check_runtime(
    name: &str,
    runtime: Arc<dyn RuntimeService>,
    image_service: Arc<dyn ImageService>,
    images: &TestImages,
) {
    let run = format!("{}-{}", std::process::id(), anycri::builders::new_uid());
    let pulls = pull_and_inspect(image_service.as_ref(), images).await;
    let web = if pulls.is_ok() {
        web_server(runtime.as_ref(), images, &run).await
    } else {
        Ok(())
    };

    // cleanup: our pods (by label), then every reference we pulled
    if let Ok(pods) = runtime
        .list_pod_sandbox(anycri::api::ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: HashMap::from([(RUN_LABEL.to_owned(), run.clone())]),
                ..Default::default()
            }),
        })
        .await
    {
        for pod in pods.items {
            if let Err(e) = runtime.remove_pod_with_containers(&pod.id).await {
                eprintln!("{name}: removing pod {} failed: {e}", pod.id);
            }
        }
    }
    let mut cleanup_errors = Vec::new();
    for reference in images.all_references() {
        if let Err(e) = image_service.remove_image_if_present(&reference).await {
            cleanup_errors.push(format!("{reference}: {e}"));
        }
    }
    pulls.unwrap_or_else(|e| panic!("{name}: {e}"));
    web.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        cleanup_errors.is_empty(),
        "{name}: removing images: {cleanup_errors:?}"
    );
    for reference in images.all_references() {
        assert!(
            image_service
                .find_image(&reference)
                .await
                .unwrap()
                .is_none(),
            "{name}: {reference} is still there after removal"
        );
    }
}

/// Pull each image by each tag and by digest; ImageStatus must give the config digest as ID
/// and the user of the config.
async fn pull_and_inspect(images_api: &dyn ImageService, images: &TestImages) -> Result<()> {
    for (kind, image) in images.iter() {
        let want_id = image
            .id
            .as_ref()
            .expect("built images have IDs")
            .to_string();
        for reference in image.all_references() {
            images_api
                .pull_image(PullImageRequest {
                    image: Some(ImageSpec {
                        image: reference.clone(),
                        ..Default::default()
                    }),
                    auth: None,
                    sandbox_config: None,
                })
                .await
                .map_err(|e| e.context(format!("pulling {reference}")))?;
            let status = images_api
                .image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: reference.clone(),
                        ..Default::default()
                    }),
                    verbose: false,
                })
                .await?;
            let Some(found) = status.image else {
                return Err(Error::internal(format!(
                    "{reference}: no status after pull"
                )));
            };
            ensure!(
                found.id == want_id,
                "{reference}: image ID {} is not the config digest {want_id}",
                found.id
            );
            check_user(kind, image, &found)?;
        }
        if let Some(tagged) = image.tagged().first() {
            let found = images_api.find_image(tagged).await?.unwrap_or_default();
            for t in image.tagged() {
                ensure!(
                    found.repo_tags.contains(&t),
                    "{tagged}: repo_tags {:?} lack {t}",
                    found.repo_tags
                );
            }
        }
    }
    Ok(())
}

fn check_user(kind: TestImageKind, image: &ImageRef, found: &anycri::api::Image) -> Result<()> {
    let uid = found.uid.as_ref().map(|u| u.value);
    let (want_uid, want_name) = match kind {
        TestImageKind::UserUid => (Some(anycri_images::USER_UID), ""),
        TestImageKind::UserUidGroup => (Some(anycri_images::USER_UID_GROUP.0), ""),
        TestImageKind::UserUsername | TestImageKind::UserUsernameGroup => {
            (None, anycri_images::USERNAME)
        }
        TestImageKind::PredefinedGroup => (Some(1000), ""),
        _ => return Ok(()),
    };
    ensure!(
        uid == want_uid && found.username == want_name,
        "{}: image status says uid {uid:?} username {:?}, the config says User {:?}",
        image.reference(),
        found.username,
        image.user
    );
    Ok(())
}

/// A pod with the web server (its own command from the image) and a busybox beside it that
/// fetches the page over the pod's loopback.
async fn web_server(runtime: &dyn RuntimeService, images: &TestImages, run: &str) -> Result<()> {
    let web = images.web_server.as_ref().expect("web server pushed");
    let log_dir = env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into());
    let uid = anycri::builders::new_uid();
    let pod = PodSandboxConfigBuilder::new(format!("images-web-{}", &uid[..8]), "anycri-test")
        .uid(uid.clone())
        .label(RUN_LABEL, run)
        .log_directory(format!("{log_dir}/{uid}"))
        .build();
    let server = ContainerConfigBuilder::new("web", web.reference())
        .label(RUN_LABEL, run)
        .build();
    let ids = runtime.run_pod_and_container(pod.clone(), server).await?;
    runtime
        .wait_for_container_state(
            &ids.container_id,
            ContainerState::ContainerRunning,
            Duration::from_secs(60),
        )
        .await?;
    let client = ContainerConfigBuilder::new("client", images.busybox.reference())
        .command(["sleep", "3600"])
        .label(RUN_LABEL, run)
        .build();
    let client_id = runtime
        .create_and_start_container(&ids.pod_sandbox_id, &pod, client)
        .await?;
    let url = format!("http://127.0.0.1:{}/", anycri_images::WEB_SERVER_PORT);
    // httpd may still be binding its port: try for a while (readiness, not a timing check)
    let mut last = String::new();
    for _ in 0..40 {
        let out = runtime
            .exec_collect(
                &client_id,
                &["wget", "-q", "-O", "-", &url],
                Duration::from_secs(10),
            )
            .await?;
        if out.success() {
            ensure!(
                out.stdout_str() == anycri_images::WEB_SERVER_PAGE,
                "{url} served {:?}",
                out.stdout_str()
            );
            return Ok(());
        }
        last = format!("exit {}: {}", out.exit_code, out.stderr_str());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(Error::internal(format!(
        "wget {url} from the client container never succeeded: {last}"
    )))
}
