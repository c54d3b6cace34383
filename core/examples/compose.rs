//! Compose an image with the public API only:
//!
//! ```sh
//! cargo run --release -p zeroimage --example compose -- PROGRAM ASSETS_DIR OUT.tar
//! ```
//!
//! FROM builtin:static, ADD ASSETS_DIR /srv/assets, COPY PROGRAM /<its file name>,
//! ENTRYPOINT ["/<its file name>"]; written to OUT.tar (an OCI archive `docker load` reads,
//! named `<file name>:latest`), and the manifest digest printed.

use std::path::PathBuf;
use zeroimage::{Add, Base, ImageBuilder, Layer, LayerOptions, Program, RegistryOptions, Sink, WriteOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [program, assets, out] = args.as_slice() else {
        eprintln!("usage: compose PROGRAM ASSETS_DIR OUT.tar");
        std::process::exit(2);
    };
    if let Err(err) = compose(program.into(), assets.into(), out) {
        eprintln!("error: {}", err.report());
        std::process::exit(1);
    }
}

fn compose(program: PathBuf, assets: PathBuf, out: &str) -> zeroimage::Result<()> {
    // The program decides the platform (its ELF header); the base is resolved for it.
    let program = Program::open(&program, None)?;
    let base: Base = "builtin:static".parse()?;
    let mut image = ImageBuilder::from_base(&base, program.platform(), &RegistryOptions::default())?;

    // Every layer is written next to the output, so that the archive can copy it cheaply.
    let sink: Sink = format!("oci-archive:{out}").parse()?;
    let layers = LayerOptions {
        format: image.format(),
        temp_dir: Some(zeroimage::sink::temp_dir_for(std::slice::from_ref(&sink))),
        ..LayerOptions::default()
    };

    // The assets, in their own layer below the program's.
    let add = Add { src: assets, dest: "/srv/assets".into(), owner: None, follow_symlinks: false };
    image.append(Layer::from_entries(add.entries()?, &layers)?, format!("ADD {add}"));

    // The program, at /<file name>, as the entrypoint.
    let path = format!("/{}", program.file_name());
    image.append(Layer::from_entries(vec![program.entry(&path)], &layers)?, format!("COPY {path}"));
    image.set_entrypoint([path.as_str()]);

    // Named <program>:latest, as the CLI does, so that `docker load` gives it a name.
    let name = format!("{}:latest", program.file_name().to_ascii_lowercase());
    let image = image.build()?;
    image.write(&[sink], &WriteOptions { tags: vec![name.parse()?], ..WriteOptions::default() })?;
    println!("{}", image.digest());
    Ok(())
}
