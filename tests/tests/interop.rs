//! Docker-format bases in, OCI archives and layouts out: a `docker save` of a multi-layer image
//! built by Docker 20.10's classic builder (uncompressed layers), and a Docker v2s2 image in a
//! real registry. Each is extended and written as an archive and as an `oci:` layout, which
//! OCI-only tools must read (umoci + runc, oci-image-tool) and Docker must load and run; the
//! same build's push keeps Docker's format with every layer gzipped.

use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::Path;
use zeroimage_tests::oci::{extract_tar, skopeo_copy, skopeo_inspect_with};
use zeroimage_tests::{
    oci_image_tool_validate, runc_run, scratch_dir, sha256_digest, static_hello, zeroimage, DockerDaemon, ImageLayout,
    OutputExt, Registry, HELLO_LINE,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The layers `docker save` wrote: (path in the archive, sha256 of its bytes), in order.
fn saved_layer_digests(saved: &Path) -> Vec<String> {
    let dir = scratch_dir();
    extract_tar(saved, dir.path());
    let manifest: Value = serde_json::from_slice(&fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| sha256_digest(&fs::read(dir.path().join(p.as_str().unwrap())).unwrap()))
        .collect()
}

/// Checks an archive or layout holds an OCI manifest and config whose base layers are the
/// expected blobs with `base_media_type`, that umoci + runc run it, and that oci-image-tool
/// validates it. Returns its manifest digest.
fn assert_oci_everywhere(path: &Path, base_layers: &[String], base_media_type: &str) -> String {
    let layout = ImageLayout::open(path); // checks every digest and diff_id itself
    let image = layout.image();
    assert_eq!(image.manifest["mediaType"], OCI_MANIFEST, "{}", path.display());
    assert_eq!(image.manifest["config"]["mediaType"], OCI_CONFIG);
    assert_eq!(layout.index["manifests"][0]["mediaType"], OCI_MANIFEST);
    let digests: Vec<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(&digests[..base_layers.len()], base_layers, "base layer bytes are unchanged");
    for layer in &image.layers[..base_layers.len()] {
        assert_eq!(layer.media_type, base_media_type);
    }
    assert_eq!(image.layers.last().unwrap().media_type, "application/vnd.oci.image.layer.v1.tar+gzip");

    let validate = oci_image_tool_validate(path);
    validate.assert_success(&format!("oci-image-tool validate {}", path.display()));

    let work = scratch_dir();
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        extract_tar(path, work.path());
        work.path().to_path_buf()
    };
    let tag = image.ref_annotation("org.opencontainers.image.ref.name").expect("a ref.name").to_string();
    let run = runc_run(&dir, &tag, &["/hello", "--cat", "/etc/app/two"]);
    assert_eq!(run.assert_success("umoci unpack + runc run").stdout_text(), format!("{HELLO_LINE}\ntwo\n"));
    image.digest.clone()
}

/// The manifest of `REPO:TAG` in `registry`, raw, and every layer blob, checked: gzip, and
/// gunzipped to the config's diff_id.
fn assert_pushed_gzip(registry: &Registry, repo: &str, reference: &str, format: &str) -> Value {
    let response = registry.request(
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"))],
        false,
    );
    assert_eq!(response.status, 200);
    let manifest: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(manifest["mediaType"], format, "{manifest}");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value =
        serde_json::from_slice(&registry.get(&format!("/v2/{repo}/blobs/{config_digest}")).body).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let expected =
            if format == DOCKER_MANIFEST { DOCKER_GZIP } else { "application/vnd.oci.image.layer.v1.tar+gzip" };
        assert_eq!(layer["mediaType"], expected, "every pushed layer is gzip: {manifest}");
        let blob = registry.get(&format!("/v2/{repo}/blobs/{}", layer["digest"].as_str().unwrap())).body;
        assert_eq!(sha256_digest(&blob), layer["digest"].as_str().unwrap());
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).expect("a gzip stream");
        assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap(), "the gzip holds the same tar");
    }
    manifest
}

#[test]
fn a_docker_save_base_gives_oci_archives_and_layouts_and_a_gzip_docker_push() {
    let docker = DockerDaemon::shared();
    let registry = Registry::shared();
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let saved = docker.busybox_multilayer_save(dir.path());
    let base_layers = saved_layer_digests(&saved);
    assert!(base_layers.len() >= 3, "several layers: {base_layers:?}");

    // One build: an archive and a push. --json says which digest each output holds.
    let archive = dir.path().join("out.tar");
    let push = registry.image("interop/saved:1");
    let out = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "-o",
        &s(&archive),
        "--push",
        &push,
        "-t",
        "zi-interop/extended:1",
        "--json",
    ]);
    out.assert_success("build on a docker save base");
    let result: Value = serde_json::from_str(out.stdout_text().trim()).unwrap();
    let archive_digest = assert_oci_everywhere(&archive, &base_layers, "application/vnd.oci.image.layer.v1.tar");
    let outputs = result["outputs"].as_array().unwrap();
    assert_eq!(result["digests"][outputs[0].as_str().unwrap()], archive_digest.as_str(), "{result}");
    let push_digest = result["digests"][outputs[1].as_str().unwrap()].as_str().unwrap().to_string();
    assert_ne!(push_digest, archive_digest, "the push is a different manifest: {result}");
    assert_eq!(result["pushed"][0], format!("{}@{push_digest}", registry.image("interop/saved")));
    assert_eq!(result["digest"], archive_digest.as_str(), "digest is the first output's");

    // The push keeps Docker's format, every layer gzip (the uncompressed ones compressed).
    assert_pushed_gzip(registry, "interop/saved", "1", DOCKER_MANIFEST);
    let inspect = skopeo_inspect_with(&registry.flags(), &registry.docker_ref("interop/saved:1"));
    assert_eq!(inspect["Digest"], push_digest.as_str());

    // The text output names both digests too.
    let text = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "-o",
        &s(&dir.path().join("again.tar")),
        "--push",
        &push,
        "-t",
        "zi-interop/extended:1",
    ]);
    text.assert_success("build (text output)");
    assert_eq!(text.stdout_text().trim(), format!("{}@{push_digest}", registry.image("interop/saved")));
    let stderr = text.stderr_text();
    assert!(
        stderr.contains(&format!("oci-archive:{}: {archive_digest}", dir.path().join("again.tar").display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("docker://{push}: {push_digest}")), "{stderr}");

    // An oci: layout of the same build: the same OCI manifest.
    let layout = dir.path().join("layout");
    zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "-o",
        &format!("oci:{}:v1", layout.display()),
        "-t",
        "zi-interop/extended:1",
    ])
    .assert_success("layout output");
    assert_eq!(assert_oci_everywhere(&layout, &base_layers, "application/vnd.oci.image.layer.v1.tar"), archive_digest);

    // Docker loads the OCI archive and runs it.
    docker.load(&archive);
    let run = docker.run("zi-interop/extended:1", &["--cat", "/etc/app/one"]);
    assert_eq!(run.assert_success("docker run").stdout_text(), format!("{HELLO_LINE}\none\n"));
    let run = docker.run("zi-interop/extended:1", &[]);
    assert_eq!(run.assert_success("docker run").stdout_text().trim_end(), HELLO_LINE);

    // --format docker without a push would do nothing: refused, nothing written.
    let refused = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "--format",
        "docker",
        "-o",
        &s(&dir.path().join("refused.tar")),
    ]);
    assert!(!refused.status.success(), "{}", refused.stderr_text());
    assert!(refused.stderr_text().contains("always hold OCI manifests"), "{}", refused.stderr_text());
    assert!(!dir.path().join("refused.tar").exists());
}

#[test]
fn a_docker_v2s2_registry_base_gives_oci_archives_and_layouts_and_keeps_docker_on_push() {
    let docker = DockerDaemon::shared();
    let registry = Registry::shared();
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let saved = docker.busybox_multilayer_save(dir.path());
    // skopeo pushes it as Docker v2s2, gzipping the layers on the way.
    skopeo_copy(
        &[&registry.dest_flags()[..], &["--format".to_string(), "v2s2".to_string()]].concat(),
        &format!("docker-archive:{}", saved.display()),
        &registry.docker_ref("interop/v2s2:1"),
    );
    let base = assert_pushed_gzip(registry, "interop/v2s2", "1", DOCKER_MANIFEST);
    let base_layers: Vec<String> =
        base["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect();

    let archive = dir.path().join("out.tar");
    let layout = dir.path().join("layout");
    for output in [s(&archive), format!("oci:{}:v1", layout.display())] {
        zeroimage(&[
            "build",
            &s(&hello),
            "--from",
            &registry.image("interop/v2s2:1"),
            "-o",
            &output,
            "-t",
            "zi-interop/from-v2s2:1",
        ])
        .assert_success("build on a Docker v2s2 registry base");
    }
    let digest = assert_oci_everywhere(&archive, &base_layers, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(assert_oci_everywhere(&layout, &base_layers, "application/vnd.oci.image.layer.v1.tar+gzip"), digest);
    docker.load(&archive);
    let run = docker.run("zi-interop/from-v2s2:1", &["--cat", "/etc/app/two"]);
    assert_eq!(run.assert_success("docker run").stdout_text(), format!("{HELLO_LINE}\ntwo\n"));

    // The push keeps the base's Docker format (mounting the base's gzip blobs), and --format
    // oci changes it.
    let out = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &registry.image("interop/v2s2:1"),
        "--push",
        &registry.image("interop/v2s2-ext:1"),
    ]);
    out.assert_success("push on a v2s2 base");
    let pushed = assert_pushed_gzip(registry, "interop/v2s2-ext", "1", DOCKER_MANIFEST);
    let pushed_layers: Vec<&str> =
        pushed["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(&pushed_layers[..base_layers.len()], &base_layers.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    let out = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &registry.image("interop/v2s2:1"),
        "--format",
        "oci",
        "--push",
        &registry.image("interop/v2s2-oci:1"),
    ]);
    out.assert_success("push with --format oci");
    assert_pushed_gzip(registry, "interop/v2s2-oci", "1", OCI_MANIFEST);
}
