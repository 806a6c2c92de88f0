//! Walks every key and value of a hive (names decoded, data read) and prints the counts; used
//! by `bench/regf-compare.sh` to time the reader against hivex, reglookup and nt-hive.
//!
//! `cargo run --release -p regf --example walk -- SYSTEM`

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: walk HIVE");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("walk: {}: {e}", path.to_string_lossy());
            return ExitCode::from(3);
        }
    };
    let hive = match regf::Hive::open_lenient(bytes) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("walk: {}: {e}", path.to_string_lossy());
            return ExitCode::from(3);
        }
    };
    let (mut keys, mut values, mut name_bytes, mut data_bytes) = (0u64, 0u64, 0, 0);
    let errors = std::cell::Cell::new(0u64);
    let walked = hive.walk(
        |path, k| {
            keys += 1;
            // The walk has decoded the key's name as the last component of its path (key names
            // cannot hold a backslash); only the root's is not in its path.
            name_bytes += match path.rsplit('\\').next() {
                Some(last) if !path.is_empty() => last.len(),
                _ => k.name().to_string_lossy().len(),
            };
            match k.values() {
                Ok(vs) => {
                    for v in vs {
                        let read = v.and_then(|v| {
                            let n = v.name().to_string_lossy().len();
                            v.raw_data().map(|d| (n, d.len()))
                        });
                        match read {
                            Ok((n, d)) => {
                                values += 1;
                                name_bytes += n;
                                data_bytes += d;
                            }
                            Err(_) => errors.set(errors.get() + 1),
                        }
                    }
                }
                Err(_) => errors.set(errors.get() + 1),
            }
        },
        |_, _| errors.set(errors.get() + 1),
    );
    if let Err(e) = walked {
        eprintln!("walk: {}: {e}", path.to_string_lossy());
        return ExitCode::from(3);
    }
    let errors = errors.get();
    println!(
        "keys {keys} values {values} errors {errors} name bytes {name_bytes} data bytes {data_bytes}"
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
