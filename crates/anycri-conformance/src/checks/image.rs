//! Images: pull by tag, without a tag and by digest, status by every kind of reference,
//! list counts, removal (by tag, by ID, concurrently), consistency right after pull and
//! remove, one image ID across every API, and the user from the image config. Checks that
//! pull or remove images run alone: other checks' images must not change under them.

use std::collections::BTreeSet;

use super::prelude::*;
use crate::images::ImageRef;

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!("image::pull_by_tag_and_remove", "an image pulled by tag is in ImageStatus and ListImages at once, and absent from both right after RemoveImage", pull_by_tag)
            .critest("[k8s.io] Image Manager public image with tag should be pulled and removed [Conformance]")
            .needs(&[Need::Image(ImageKind::Pull)]).exclusive(),
        check!("image::pull_by_digest", "an image pulled by its manifest digest is found by that digest, with the expected image ID", pull_by_digest)
            .critest("[k8s.io] Image Manager public image with digest should be pulled and removed [Conformance]")
            .needs(&[Need::Image(ImageKind::Digest)]).exclusive(),
        check!("image::pull_without_tag", "a reference without a tag means `latest`", pull_without_tag)
            .critest("[k8s.io] Image Manager public image without tag should be pulled and removed [Conformance]")
            .needs(&[Need::Image(ImageKind::Untagged)]).exclusive(),
        check!("image::status_by_every_reference", "ImageStatus finds one image by tag, by ID and by digest", status_by_reference)
            .critest("[k8s.io] Image Manager image status should support all kinds of references [Conformance]"),
        check!("image::id_consistent_across_apis", "PullImage, ImageStatus, ListImages and the container's status name the same image", id_consistent),
        check!("image::list_counts", "ListImages grows by one on a pull and shrinks by one on a remove", list_counts)
            .needs(&[Need::Image(ImageKind::Pull)]).exclusive(),
        check!("image::distinct_images_listed", "distinct images pulled are each listed once, with distinct IDs, and gone after their removal", distinct_listed)
            .critest("[k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]")
            .needs(&[Need::Image(ImageKind::Distinct)]).exclusive(),
        check!("image::list_shows_every_tag", "an image pulled under several tags is listed once with every tag", list_every_tag)
            .critest("[k8s.io] Image Manager listImage should get exactly 3 repoTags in the result image [Conformance]")
            .needs(&[Need::RegistryImages, Need::Image(ImageKind::MultiTag)]).exclusive(),
        check!("image::concurrent_removes", "concurrent RemoveImage calls of one image by ID all succeed, and an ImageStatus right after each finds nothing", concurrent_removes)
            .critest("[k8s.io] Image Consistency should not fail on simultaneous RemoveImage calls [Conformance]")
            .needs(&[Need::Image(ImageKind::Pull)]).exclusive(),
        check!("image::remove_by_id_removes_all_tags", "removing an image by ID removes every tag of it", remove_all_tags)
            .critest("[k8s.io] Image Manager removing image by one tag should remove all tags [Conformance]")
            .needs(&[Need::RegistryImages, Need::Image(ImageKind::MultiTag)]).exclusive(),
        check!("image::status_missing_is_empty", "ImageStatus of an absent image succeeds with no image", status_missing),
        check!("image::pull_missing_fails", "pulling an image from a registry that cannot exist fails", pull_missing),
        check!("image::user_from_config", "a container runs as the image's USER uid, and ImageStatus reports it", user_uid)
            .critest("[k8s.io] Image Manager image status get image fields should not have Uid|Username empty [Conformance]")
            .needs(&[Need::Processes, Need::Image(ImageKind::User)]),
        check!("image::user_group_from_config", "a container runs as the image's USER uid:gid", user_group)
            .needs(&[Need::Processes, Need::Image(ImageKind::UserGroup)]),
        check!("image::named_user_from_config", "a container runs as the image's USER name, and ImageStatus reports the name", named_user)
            .needs(&[Need::Processes, Need::Image(ImageKind::NamedUser)]),
        check!("image::named_user_group_from_config", "a container runs as the image's USER name:group", named_user_group)
            .needs(&[Need::Processes, Need::Image(ImageKind::NamedUserGroup)]),
        check!("image::groups_from_image", "a container's user gets the supplementary groups the image's /etc/group gives it", image_groups)
            .needs(&[Need::Processes, Need::Image(ImageKind::PredefinedGroup)]),
    ]
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

async fn status(t: &TestContext, image: &str) -> Result<Option<Image>, Failure> {
    t.img()
        .find_image(image)
        .await
        .step(&format!("ImageStatus {image}"))
}

async fn pull(t: &TestContext, image: &str) -> Result<String, Failure> {
    Ok(t.img()
        .pull_image(PullImageRequest {
            image: spec(image),
            auth: None,
            sandbox_config: None,
        })
        .await
        .step(&format!("PullImage {image}"))?
        .image_ref)
}

async fn remove(t: &TestContext, image: &str) -> CheckResult {
    t.img()
        .remove_image(RemoveImageRequest { image: spec(image) })
        .await
        .step(&format!("RemoveImage {image}"))?;
    Ok(())
}

async fn listed_ids(t: &TestContext) -> Result<Vec<String>, Failure> {
    Ok(t.img()
        .list_images(ListImagesRequest::default())
        .await
        .step("ListImages")?
        .images
        .into_iter()
        .map(|i| i.id)
        .collect())
}

fn pull_image(t: &TestContext) -> Result<String, Failure> {
    t.image(ImageKind::Pull)
}

async fn pull_by_tag(t: TestContext) -> CheckResult {
    let image = pull_image(&t)?;
    t.img()
        .remove_image_if_present(&image)
        .await
        .step("removing leftovers")?;
    pull(&t, &image).await?;
    let found = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail("ImageStatus right after the pull found nothing".into()))?;
    ensure!(
        found.repo_tags.iter().any(|tag| tag == &image),
        "repo_tags {:?} lack {image}",
        found.repo_tags
    );
    ensure!(found.size > 0, "size is 0");
    ensure!(
        listed_ids(&t).await?.contains(&found.id),
        "ListImages right after the pull lacks {}",
        found.id
    );
    remove(&t, &image).await?;
    ensure!(
        status(&t, &image).await?.is_none(),
        "ImageStatus right after RemoveImage still finds it"
    );
    ensure!(
        !listed_ids(&t).await?.contains(&found.id),
        "ListImages right after RemoveImage still has {}",
        found.id
    );
    Ok(())
}

async fn pull_by_digest(t: TestContext) -> CheckResult {
    let digest_image = t.image_ref(ImageKind::Digest)?.clone();
    let digest = match digest_image.by_digest() {
        Some(d) => d,
        None => {
            // The set names it by tag only: learn the digest from the runtime.
            let tagged = digest_image.reference();
            pull(&t, &tagged).await?;
            let found = status(&t, &tagged)
                .await?
                .ok_or_else(|| Failure::Fail(format!("{tagged} not found after its pull")))?;
            let d = found.repo_digests.first().cloned().ok_or_else(|| {
                Failure::Fail(format!("a pulled image has no repo_digests: {found:?}"))
            })?;
            remove(&t, &tagged).await?;
            d
        }
    };
    t.img()
        .remove_image_if_present(&digest)
        .await
        .step("removing leftovers")?;
    pull(&t, &digest).await?;
    let by_digest = status(&t, &digest)
        .await?
        .ok_or_else(|| Failure::Fail(format!("ImageStatus {digest} found nothing")))?;
    // The ID the image was built with, where the runtime pulls the registry's images (a
    // fake invents its own IDs).
    if let Some(id) = &digest_image.id
        && t.features().missing(Need::RegistryImages).is_none()
    {
        // The CRI fixes no form for image IDs: CRI-O reports the config digest's bare hex.
        let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_owned();
        ensure_eq!(
            bare(&by_digest.id),
            bare(&id.to_string()),
            "ID of the image pulled by digest (without the sha256: prefix)"
        );
    }
    ensure!(
        by_digest.repo_digests.contains(&digest),
        "repo_digests {:?} lack {digest}",
        by_digest.repo_digests
    );
    ensure!(
        listed_ids(&t).await?.contains(&by_digest.id),
        "ListImages lacks the image pulled by digest"
    );
    remove(&t, &digest).await?;
    ensure!(
        status(&t, &digest).await?.is_none(),
        "still present after RemoveImage by digest"
    );
    Ok(())
}

async fn pull_without_tag(t: TestContext) -> CheckResult {
    let repo = t.image(ImageKind::Untagged)?;
    pull(&t, &repo).await?;
    let found = status(&t, &repo)
        .await?
        .ok_or_else(|| Failure::Fail(format!("ImageStatus {repo} found nothing")))?;
    let latest = format!("{repo}:latest");
    ensure!(
        found.repo_tags.contains(&latest),
        "repo_tags {:?} lack {latest}",
        found.repo_tags
    );
    let by_latest = status(&t, &latest)
        .await?
        .ok_or_else(|| Failure::Fail(format!("ImageStatus {latest} found nothing")))?;
    ensure_eq!(by_latest.id, found.id, "image of {latest}");
    // Removing an image removes all its names: keep it when it is the busybox every
    // container runs (the live environment's set names busybox's own `latest`).
    let busybox = status(&t, t.busybox()).await?.map(|i| i.id);
    if busybox.as_ref() != Some(&found.id) {
        remove(&t, &latest).await?;
    }
    Ok(())
}

async fn status_by_reference(t: TestContext) -> CheckResult {
    let image = t.busybox().to_owned();
    let found = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail(format!("{image} not found")))?;
    let mut refs = vec![found.id.clone()];
    refs.extend(found.repo_digests.iter().cloned());
    refs.extend(found.repo_tags.iter().cloned());
    for r in refs {
        let other = status(&t, &r)
            .await?
            .ok_or_else(|| Failure::Fail(format!("ImageStatus by {r:?} found nothing")))?;
        ensure_eq!(other.id, found.id, "image found by {r:?}");
    }
    Ok(())
}

async fn id_consistent(t: TestContext) -> CheckResult {
    let image = t.busybox().to_owned();
    let pulled = pull(&t, &image).await?;
    let found = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail(format!("{image} not found")))?;
    let names: BTreeSet<String> = std::iter::once(found.id.clone())
        .chain(found.repo_digests.iter().cloned())
        .collect();
    ensure!(
        names.contains(&pulled),
        "PullImage's image_ref {pulled:?} is neither the ID nor a digest of {names:?}"
    );
    let listed = t
        .img()
        .list_images(ListImagesRequest::default())
        .await
        .step("ListImages")?
        .images;
    let entry = listed
        .iter()
        .find(|i| i.repo_tags.contains(&image))
        .ok_or_else(|| Failure::Fail(format!("ListImages lacks {image}")))?;
    ensure_eq!(entry.id, found.id, "ID in ListImages");
    let r = t.run_sleeper().await?;
    let s = t.status(&r.container).await?;
    ensure!(
        names.contains(&s.image_ref),
        "ContainerStatus image_ref {:?} is neither the ID nor a digest of {names:?}",
        s.image_ref
    );
    if !s.image_id.is_empty() {
        ensure_eq!(s.image_id, found.id, "ContainerStatus image_id");
    }
    Ok(())
}

async fn list_counts(t: TestContext) -> CheckResult {
    let image = pull_image(&t)?;
    remove_leftovers(&t, t.image_ref(ImageKind::Pull)?).await?;
    let before = listed_ids(&t).await?;
    let id = pull(&t, &image).await?;
    let id = match status(&t, &image).await? {
        Some(found) => found.id,
        None => fail!("{image} ({id}) not found after its pull"),
    };
    // Other clients may pull and remove their own images meanwhile: count this image's
    // entries, not the totals.
    let count = |ids: &[String]| ids.iter().filter(|l| **l == id).count();
    ensure_eq!(count(&before), 0, "entries of {id} before the pull");
    ensure_eq!(
        count(&listed_ids(&t).await?),
        1,
        "entries of {id} after the pull"
    );
    remove(&t, &image).await?;
    ensure_eq!(
        count(&listed_ids(&t).await?),
        0,
        "entries of {id} after the remove"
    );
    Ok(())
}

/// Remove every reference of `image` (and its ID, when known) that a previous run or check
/// left, so that the check starts without it.
async fn remove_leftovers(t: &TestContext, image: &ImageRef) -> CheckResult {
    for r in image
        .all_references()
        .into_iter()
        .chain(image.id.as_ref().map(ToString::to_string))
    {
        t.img()
            .remove_image_if_present(&r)
            .await
            .step(&format!("removing leftovers of {r}"))?;
    }
    Ok(())
}

async fn concurrent_removes(t: TestContext) -> CheckResult {
    let image = pull_image(&t)?;
    pull(&t, &image).await?;
    let id = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail("pulled image not found".into()))?
        .id;
    // As critest: five removals of the image by ID at once, each followed at once by an
    // ImageStatus of that ID. The CRI: RemoveImage "must not return an error if the image
    // has already been removed"; the status must answer (empty), not fail.
    let removes = (0..5).map(|_| async {
        let removed = t
            .img()
            .remove_image(RemoveImageRequest { image: spec(&id) })
            .await;
        let after = t
            .img()
            .image_status(ImageStatusRequest {
                image: spec(&id),
                verbose: false,
            })
            .await;
        (removed, after)
    });
    for (removed, after) in futures::future::join_all(removes).await {
        if let Err(e) = removed {
            fail!(
                "a concurrent RemoveImage failed: {} error: {e}",
                e.kind().as_str()
            );
        }
        match after {
            Ok(r) => ensure!(
                r.image.is_none(),
                "ImageStatus right after a RemoveImage returned still finds the image"
            ),
            Err(e) => fail!(
                "ImageStatus during concurrent removals failed: {} error: {e}",
                e.kind().as_str()
            ),
        }
    }
    Ok(())
}

async fn remove_all_tags(t: TestContext) -> CheckResult {
    let tags = t.image_ref(ImageKind::MultiTag)?.tagged();
    for tag in &tags {
        pull(&t, tag).await?;
    }
    let first = status(&t, &tags[0])
        .await?
        .ok_or_else(|| Failure::Fail("pulled image not found".into()))?;
    remove(&t, &first.id).await?;
    for tag in &tags {
        ensure!(
            status(&t, tag).await?.is_none(),
            "{tag} is still present after RemoveImage by ID"
        );
    }
    Ok(())
}

async fn status_missing(t: TestContext) -> CheckResult {
    let absent = format!(
        "{}-anycri-absent:never",
        t.busybox().split(':').next().unwrap_or("x")
    );
    ensure!(
        status(&t, &absent).await?.is_none(),
        "ImageStatus found the absent image {absent}"
    );
    Ok(())
}

async fn pull_missing(t: TestContext) -> CheckResult {
    // RFC 2606 reserves `.invalid`: no registry there can answer.
    let absent = "anycri-conformance.invalid/anycri/absent:none".to_owned();
    expect_err(
        t.img()
            .pull_image(PullImageRequest {
                image: spec(&absent),
                ..Default::default()
            })
            .await,
        &format!("PullImage {absent}"),
    )?;
    Ok(())
}

async fn run_image_default_user(t: &TestContext, image: &str) -> Result<(String, String), Failure> {
    t.ensure_image(image).await?;
    let r = t
        .run(t.pod().build(), t.container_on(image).build())
        .await?;
    let uid = t.sh(&r.container, "id -u").await?;
    let gid = t.sh(&r.container, "id -g").await?;
    Ok((uid.trim().to_owned(), gid.trim().to_owned()))
}

/// The `USER` of the image of `kind` (as its config sets it) and the image's reference.
fn configured_user(t: &TestContext, kind: ImageKind) -> Result<(String, String), Failure> {
    let image = t.image_ref(kind)?;
    let user = image.user.clone().unwrap_or_default();
    Ok((image.reference(), user))
}

async fn user_uid(t: TestContext) -> CheckResult {
    let (image, user) = configured_user(&t, ImageKind::User)?;
    let uid: i64 = user
        .parse()
        .map_err(|_| Failure::Skip(format!("the USER image's user {user:?} is not a uid")))?;
    let (got, _) = run_image_default_user(&t, &image).await?;
    ensure_eq!(got, uid.to_string(), "uid in the container");
    let st = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail("image not found".into()))?;
    ensure_eq!(st.uid.map(|u| u.value), Some(uid), "ImageStatus uid");
    Ok(())
}

async fn user_group(t: TestContext) -> CheckResult {
    let (image, user) = configured_user(&t, ImageKind::UserGroup)?;
    let (uid, gid) = user
        .split_once(':')
        .ok_or_else(|| Failure::Skip(format!("the image's user {user:?} is not uid:gid")))?;
    let got = run_image_default_user(&t, &image).await?;
    ensure_eq!(
        got,
        (uid.to_owned(), gid.to_owned()),
        "uid and gid in the container"
    );
    Ok(())
}

async fn named_user(t: TestContext) -> CheckResult {
    let (image, user) = configured_user(&t, ImageKind::NamedUser)?;
    t.ensure_image(&image).await?;
    let r = t
        .run(t.pod().build(), t.container_on(&image).build())
        .await?;
    ensure_eq!(
        t.sh(&r.container, "id -un").await?.trim(),
        user.as_str(),
        "user name in the container"
    );
    let st = status(&t, &image)
        .await?
        .ok_or_else(|| Failure::Fail("image not found".into()))?;
    ensure_eq!(st.username, user, "ImageStatus username");
    Ok(())
}

async fn named_user_group(t: TestContext) -> CheckResult {
    let (image, user) = configured_user(&t, ImageKind::NamedUserGroup)?;
    let (name, group) = user
        .split_once(':')
        .ok_or_else(|| Failure::Skip(format!("the image's user {user:?} is not name:group")))?;
    t.ensure_image(&image).await?;
    let r = t
        .run(t.pod().build(), t.container_on(&image).build())
        .await?;
    let got = t.sh(&r.container, "id -un; id -gn").await?;
    let got: Vec<&str> = got.lines().map(str::trim).collect();
    ensure_eq!(got, [name, group], "user and group names in the container");
    Ok(())
}

async fn image_groups(t: TestContext) -> CheckResult {
    let image = t.image(ImageKind::PredefinedGroup)?;
    let want = anycri_images::catalog::PREDEFINED_GROUP_GID.to_string();
    t.ensure_image(&image).await?;
    let r = t
        .run(t.pod().build(), t.container_on(&image).build())
        .await?;
    let groups = t.sh(&r.container, "id -G").await?;
    ensure!(
        groups.split_whitespace().any(|g| g == want),
        "the process's groups {:?} lack {want}, which the image's /etc/group gives its user",
        groups.trim()
    );
    Ok(())
}

async fn distinct_listed(t: TestContext) -> CheckResult {
    let refs = t.images().distinct.clone();
    for r in &refs {
        remove_leftovers(&t, r).await?;
    }
    let images: Vec<String> = refs.iter().map(ImageRef::reference).collect();
    let before = listed_ids(&t).await?;
    let mut ids = Vec::new();
    for i in &images {
        pull(&t, i).await?;
        let found = status(&t, i)
            .await?
            .ok_or_else(|| Failure::Fail(format!("{i} not found after its pull")))?;
        ids.push(found.id);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    ensure_eq!(
        distinct.len(),
        images.len(),
        "distinct image IDs of {images:?}"
    );
    // Other clients may pull and remove their own images meanwhile: compare IDs, not totals.
    ensure!(
        ids.iter().all(|id| !before.contains(id)),
        "ListImages listed the images before their pull"
    );
    let after = listed_ids(&t).await?;
    for id in &ids {
        ensure_eq!(
            after.iter().filter(|l| *l == id).count(),
            1,
            "times ListImages lists {id}"
        );
    }
    for i in &images {
        remove(&t, i).await?;
    }
    let gone = listed_ids(&t).await?;
    ensure!(
        ids.iter().all(|id| !gone.contains(id)),
        "ListImages still lists removed images"
    );
    Ok(())
}

async fn list_every_tag(t: TestContext) -> CheckResult {
    let tags = t.image_ref(ImageKind::MultiTag)?.tagged();
    for tag in &tags {
        pull(&t, tag).await?;
    }
    let id = status(&t, &tags[0])
        .await?
        .ok_or_else(|| Failure::Fail("pulled image not found".into()))?
        .id;
    let listed = t
        .img()
        .list_images(ListImagesRequest::default())
        .await
        .step("ListImages")?
        .images;
    let entries: Vec<&Image> = listed.iter().filter(|i| i.id == id).collect();
    ensure_eq!(entries.len(), 1, "ListImages entries for {id}");
    let listed_tags: BTreeSet<&String> = entries[0].repo_tags.iter().collect();
    ensure_eq!(
        listed_tags,
        tags.iter().collect::<BTreeSet<_>>(),
        "repo_tags of the image pulled under every tag"
    );
    remove(&t, &id).await?;
    Ok(())
}
