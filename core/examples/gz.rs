use std::io::{Read, Write};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut data = Vec::new();
    std::fs::File::open(&a[1]).unwrap().read_to_end(&mut data).unwrap();
    let threads: usize = a[2].parse().unwrap();
    let t = std::time::Instant::now();
    let mut w = zeroimage::compress::GzipWriter::new(Vec::new(), 6, threads);
    w.write_all(&data).unwrap();
    let out = w.finish().unwrap();
    eprintln!("{:?}", t.elapsed());
    std::fs::write(&a[3], &out).unwrap();
}
