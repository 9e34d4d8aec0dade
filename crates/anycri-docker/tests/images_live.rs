//! The Docker shim's image service on a real dockerd (the one `scripts/runtime-env up` starts):
//! pull, status by every kind of name, list, untag versus remove, in-use refusal, idempotent
//! removal, pull and reference errors, filesystem info. Skips with a printed reason when Docker
//! is not available, or fails under `ANYCRI_REQUIRE_LIVE=1`.

use anycri_testenv::{env_value, skip_or_fail};

use anycri_core::{Error, ErrorKind, ImageService, api::*};
use anycri_docker::DockerRuntime;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, TagImageOptionsBuilder,
};

struct Live {
    rt: DockerRuntime,
    docker: bollard::Docker,
    registry: String,
    pull_image: String,
    _state: tempfile::TempDir,
}

async fn live() -> Option<Live> {
    let Some(endpoint) = env_value("DOCKER_ENDPOINT") else {
        skip_or_fail("DOCKER_ENDPOINT is not set and no runtime-env file names it");
        return None;
    };
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    let pause =
        env_value("ANYCRI_PAUSE_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/pause:1.0"));
    let pull_image =
        env_value("ANYCRI_PULL_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/pulltest:1.0"));
    let state = tempfile::tempdir().expect("a state dir");
    let rt = match DockerRuntime::builder(&endpoint)
        .state_dir(state.path())
        .pause_image(pause)
        .connect()
        .await
    {
        Ok(rt) => rt,
        Err(e) => {
            skip_or_fail(&format!("Docker at {endpoint} does not answer: {e}"));
            return None;
        }
    };
    let socket = endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, p)| p);
    let docker = bollard::Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)
        .expect("bollard client")
        .negotiate_version()
        .await
        .expect("negotiate the API version");
    Some(Live {
        rt,
        docker,
        registry,
        pull_image,
        _state: state,
    })
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

impl Live {
    async fn status(&self, image: &str) -> Option<Image> {
        self.rt
            .image_status(ImageStatusRequest {
                image: spec(image),
                verbose: false,
            })
            .await
            .unwrap_or_else(|e| panic!("status of {image:?}: {e}"))
            .image
    }

    async fn pull(&self, image: &str) -> Result<String, Error> {
        self.rt
            .pull_image(PullImageRequest {
                image: spec(image),
                ..Default::default()
            })
            .await
            .map(|r| r.image_ref)
    }

    async fn remove(&self, image: &str) -> Result<(), Error> {
        self.rt
            .remove_image(RemoveImageRequest { image: spec(image) })
            .await
            .map(|_| ())
    }

    async fn list(&self, filter: Option<&str>) -> Vec<Image> {
        self.rt
            .list_images(ListImagesRequest {
                filter: filter.map(|f| ImageFilter { image: spec(f) }),
            })
            .await
            .expect("list images")
            .images
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorKind {
    r.expect_err("an error").kind()
}

/// One test, so its steps on the pull-test image do not race each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_service_on_docker() {
    let Some(t) = live().await else { return };
    let image = t.pull_image.clone();
    let (repo, _) = image
        .rsplit_once(':')
        .expect("the pull-test image has a tag");
    // A second name on Docker Hub's default repository, which Docker shows in short form
    // (`anycri-images-live-1:latest`): found by short and full names alike.
    let second_repo = format!("anycri-images-live-{}", std::process::id());
    let second = format!("{second_repo}:latest");
    let second_full = format!("docker.io/library/{second}");

    // Start from nothing.
    t.remove(&image).await.expect("remove before");
    t.remove(&second).await.expect("remove before");
    if let Some(left) = t.status(&image).await {
        t.remove(&left.id).await.expect("remove a leftover");
    }
    assert_eq!(
        t.status(&image).await,
        None,
        "absent → no image, not an error"
    );

    // Pull: the reference is the image ID, and every name finds the same image.
    let id = t.pull(&image).await.expect("pull");
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "image_ref is the image ID: {id}"
    );
    let by_tag = t.status(&image).await.expect("status by tag");
    assert_eq!(by_tag.id, id);
    assert!(by_tag.repo_tags.contains(&image), "{by_tag:?}");
    assert!(by_tag.size > 0);
    assert!(!by_tag.pinned);
    assert_eq!(t.status(&id).await.map(|i| i.id), Some(id.clone()), "by ID");
    let hex = id.trim_start_matches("sha256:");
    assert_eq!(
        t.status(hex).await.map(|i| i.id),
        Some(id.clone()),
        "by bare hex ID"
    );
    assert_eq!(
        t.status(&hex[..12]).await.map(|i| i.id),
        Some(id.clone()),
        "by short ID"
    );
    let digest = by_tag
        .repo_digests
        .first()
        .expect("a pulled image has a repo digest")
        .clone();
    assert!(digest.contains("@sha256:"), "{digest}");
    assert_eq!(
        t.status(&digest).await.map(|i| i.id),
        Some(id.clone()),
        "by digest"
    );
    // The pause image is pinned.
    let pause = t.registry.clone() + "/anycri/pause:1.0";
    if let Some(p) = t.status(&pause).await {
        assert!(p.pinned, "{p:?}");
    }

    // Verbose status: the image spec.
    let verbose =
        t.rt.image_status(ImageStatusRequest {
            image: spec(&image),
            verbose: true,
        })
        .await
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(verbose.info.get("info").expect("info[\"info\"]")).unwrap();
    assert_eq!(info["id"], id.as_str());
    assert!(info["imageSpec"]["architecture"].is_string(), "{info}");
    assert!(info["imageSpec"]["created"].is_string(), "{info}");
    assert!(info["imageSpec"]["config"].is_object(), "{info}");
    assert!(info["imageSpec"]["rootfs"]["diff_ids"].is_array(), "{info}");
    assert!(info["imageSpec"]["history"].is_array(), "{info}");

    // Listed with the same ID; filters find it by tag, ID and digest.
    let all = t.list(None).await;
    let listed = all.iter().find(|i| i.id == id).expect("listed");
    assert_eq!(listed.repo_tags, by_tag.repo_tags);
    assert_eq!(listed.repo_digests, by_tag.repo_digests);
    assert_eq!(listed.size, by_tag.size);
    for filter in [image.as_str(), id.as_str(), &hex[..12], digest.as_str()] {
        let found = t.list(Some(filter)).await;
        assert_eq!(
            found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            vec![id.as_str()],
            "filter {filter:?}"
        );
    }
    assert!(
        t.list(Some(&format!("{repo}:no-such-tag")))
            .await
            .is_empty()
    );
    assert_eq!(
        kind(
            t.rt.list_images(ListImagesRequest {
                filter: Some(ImageFilter {
                    image: spec("Bad Ref")
                })
            })
            .await
        ),
        ErrorKind::InvalidArgument
    );

    // Pulling again gives the same ID.
    assert_eq!(t.pull(&image).await.unwrap(), id);

    // Two tags: removing one only untags.
    t.docker
        .tag_image(
            &id,
            Some(
                TagImageOptionsBuilder::new()
                    .repo(&second_repo)
                    .tag("latest")
                    .build(),
            ),
        )
        .await
        .expect("tag");
    for name in [&second, &second_repo, &second_full] {
        assert_eq!(
            t.status(name).await.map(|i| i.id),
            Some(id.clone()),
            "{name}"
        );
        let found = t.list(Some(name)).await;
        assert_eq!(found.len(), 1, "filter {name:?}: {found:?}");
        assert!(found[0].repo_tags.contains(&second), "{found:?}");
    }
    t.remove(&image).await.expect("untag");
    let remaining = t.status(&id).await.expect("still there with its other tag");
    assert_eq!(remaining.repo_tags, vec![second.clone()]);
    assert_eq!(t.status(&image).await, None);

    // In use by a (never started) container: removing the image is refused.
    t.docker
        .tag_image(
            &id,
            Some(
                TagImageOptionsBuilder::new()
                    .repo(repo)
                    .tag(image.rsplit_once(':').unwrap().1)
                    .build(),
            ),
        )
        .await
        .expect("tag again");
    let name = format!("anycri-images-live-{}", std::process::id());
    let container = t
        .docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            bollard::models::ContainerCreateBody {
                image: Some(id.clone()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("create a container");
    let refused = t.remove(&id).await;
    t.docker
        .remove_container(
            &container.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .expect("remove the container");
    assert_eq!(kind(refused), ErrorKind::FailedPrecondition);
    assert!(t.status(&image).await.is_some(), "the image survived");
    assert!(t.status(&second).await.is_some(), "with both tags");

    // By ID: the image with all its tags; again: fine.
    t.remove(&id).await.expect("remove by ID");
    assert_eq!(t.status(&id).await, None);
    assert_eq!(t.status(&second_full).await, None);
    assert_eq!(t.status(&image).await, None);
    t.remove(&id)
        .await
        .expect("removing an absent image is fine");
    t.remove(&image)
        .await
        .expect("removing an absent tag is fine");

    // By digest: the whole image too.
    assert_eq!(t.pull(&digest).await.unwrap(), id, "pull by digest");
    t.remove(&digest).await.expect("remove by digest");
    assert_eq!(t.status(&id).await, None);

    // Errors.
    assert_eq!(
        kind(t.pull("Not A Valid Ref").await),
        ErrorKind::InvalidArgument
    );
    let e = t.pull("Not A Valid Ref").await.unwrap_err();
    assert!(e.message().contains("image.image"), "{e}");
    assert_eq!(
        kind(t.pull(&id).await),
        ErrorKind::InvalidArgument,
        "pull by ID"
    );
    assert_eq!(
        kind(t.pull(&format!("{repo}:no-such-tag")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            t.pull(&format!("{}/anycri/no-such-image:1.0", t.registry))
                .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(t.pull("127.0.0.1:1/anycri/x:1.0").await),
        ErrorKind::Unavailable
    );
    assert_eq!(
        kind(
            t.rt.image_status(ImageStatusRequest {
                image: spec("Bad Ref"),
                verbose: false
            })
            .await
        ),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(t.remove("UPPER/../x").await),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(t.rt.image_status(ImageStatusRequest::default()).await),
        ErrorKind::InvalidArgument
    );

    // Leave the pull-test image present, as found by most other tests.
    assert_eq!(t.pull(&image).await.unwrap(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_fs_info_on_docker() {
    let Some(t) = live().await else { return };
    let info =
        t.rt.image_fs_info(ImageFsInfoRequest {})
            .await
            .expect("image fs info");
    let fs = info.image_filesystems.first().expect("an image filesystem");
    let mountpoint = &fs.fs_id.as_ref().expect("fs_id").mountpoint;
    assert!(mountpoint.starts_with('/'), "{mountpoint}");
    if let Some(root) = env_value("DOCKER_DATA_ROOT") {
        assert_eq!(mountpoint, &root);
    }
    assert!(fs.used_bytes.expect("used bytes").value > 0, "{fs:?}");
    assert!(fs.inodes_used.expect("inodes used").value > 0, "{fs:?}");
    assert!(fs.timestamp > 0);
    let containers = info
        .container_filesystems
        .first()
        .expect("a container filesystem");
    assert_eq!(&containers.fs_id.as_ref().unwrap().mountpoint, mountpoint);
    assert!(containers.used_bytes.is_some());
}
