//! Image references, as anycri reads them from CRI clients, parameter files and Docker's
//! lists: the one parser (`anycri_core::image_ref`, behind the Docker shim, the fake and the
//! bench) and the test images' type on top of it (anycri-images); a parsed reference written
//! out again parses to the same value.
#![no_main]
use anycri_core::image_ref::{ImageRef, NamedRef, Written, parse_reference};
use anycri_images::{Digest, ImagePrefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    image_ref(&text);
    test_images(&text);
});

/// `repo[:tag][@digest]`.
fn written(repo: &str, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut s = repo.to_owned();
    if let Some(tag) = tag {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(digest) = digest {
        s.push('@');
        s.push_str(digest);
    }
    s
}

fn image_ref(reference: &str) {
    match parse_reference(reference) {
        Ok(ImageRef::Id(id)) => {
            assert_eq!(
                parse_reference(&id),
                Ok(ImageRef::Id(id.clone())),
                "{id:?} from {reference:?}"
            );
        }
        Ok(ImageRef::Named(n)) => {
            // The parts as written put back together are the reference.
            let w = Written::split(reference);
            assert_eq!(written(w.name, w.tag, w.digest), reference);
            // The normalised reference names the same repository, tag and digest (and, with
            // a registry and a path, is no longer a short image ID).
            let again = written(&n.repo, n.tag.as_deref(), n.digest.as_deref());
            let expected = NamedRef {
                id_prefix: None,
                ..n.clone()
            };
            assert_eq!(
                parse_reference(&again),
                Ok(ImageRef::Named(expected)),
                "{again:?} from {reference:?}"
            );
            // What Docker is asked for names the same image, and is already normal.
            let canonical = n.canonical();
            match parse_reference(&canonical) {
                Ok(ImageRef::Named(c)) => {
                    assert_eq!(
                        (&c.repo, &c.digest),
                        (&n.repo, &n.digest),
                        "{canonical:?} from {reference:?}"
                    );
                    assert_eq!(c.canonical(), canonical, "from {reference:?}");
                }
                other => panic!("{canonical:?} from {reference:?} parses as {other:?}"),
            }
        }
        Err(_) => {}
    }
}

fn test_images(reference: &str) {
    if let Ok(r) = anycri_images::ImageRef::parse(reference) {
        let digest = r.digest.as_ref().map(Digest::as_str);
        let again = written(&r.repository, r.tags.first().map(String::as_str), digest);
        assert_eq!(
            anycri_images::ImageRef::parse(&again).ok(),
            Some(r.clone()),
            "{again:?} from {reference:?}"
        );
        for each in r.all_references() {
            let parsed = anycri_images::ImageRef::parse(&each);
            assert_eq!(
                parsed.map(|p| p.repository).ok().as_ref(),
                Some(&r.repository),
                "{each:?} from {reference:?}"
            );
        }
    }
    if let Ok(d) = Digest::parse(reference) {
        assert_eq!(d.to_string(), reference);
    }
    let _ = anycri_images::registry::validate_repository(reference);
    let _ = anycri_images::registry::validate_tag(reference);
    let _ = ImagePrefix::new("127.0.0.1:5000", reference);
}
